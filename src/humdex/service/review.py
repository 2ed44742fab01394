"""The review page's API as a FastAPI router (mounted by `humdex review DIR --serve` and `humdex serve --review DIR`).

GET  /review                      the page (web/review.html)
GET  /review/api/queue            the uncertain pairs left, best first
GET  /review/api/audio/{g}/{f}/{id}    a version's WAV (only rows of the mined folder)
GET  /review/api/contour/{g}/{f}/{id}  its pitch contour for drawing
POST /review/api/answer           {group_id, fragment_id, id, answer: same|different|skip}

The answer endpoint writes: it belongs behind the service's access guard (Host/Origin checks
and the write token of service/access.py) wherever the router is mounted; the router is kept
separate so that guard can be added as a router dependency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from humdex.errors import HumdexError
from humdex.service.access import AccessConfig, AccessGuard
from humdex.training.review import contour_json, find_version, record_answer, review_queue

WEB_DIR = Path(__file__).parent / "web"


class Answer(BaseModel):
    group_id: str
    fragment_id: str
    id: str
    answer: str


def review_router(folder: str | Path, dependencies: list | None = None) -> APIRouter:
    """The review endpoints over one mined folder; `dependencies` guard every route
    (e.g. the access check of the write token)."""
    folder = Path(folder)
    router = APIRouter(dependencies=dependencies or [])

    def _version(g: str, f: str, v: str):
        try:
            return find_version(folder, g, f, v)
        except HumdexError as err:
            raise HTTPException(404, str(err)) from err

    @router.get("/review", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB_DIR / "review.html")

    @router.get("/review/api/queue", summary="Uncertain mined pairs waiting for a person")
    def queue() -> dict[str, Any]:
        items = review_queue(folder)
        return {"remaining": len(items), "items": [it.to_json() for it in items]}

    @router.get("/review/api/audio/{group_id}/{fragment_id}/{version_id}", summary="A version's audio")
    def audio(group_id: str, fragment_id: str, version_id: str) -> FileResponse:
        rec = _version(group_id, fragment_id, version_id)
        path = rec.audio_path(folder)
        if not path.is_file():
            raise HTTPException(404, f"no audio for {version_id}")
        return FileResponse(path, media_type="audio/wav")

    @router.get("/review/api/contour/{group_id}/{fragment_id}/{version_id}", summary="A version's pitch contour")
    def contour(group_id: str, fragment_id: str, version_id: str) -> dict[str, Any]:
        rec = _version(group_id, fragment_id, version_id)
        try:
            return contour_json(folder, rec)
        except HumdexError as err:
            raise HTTPException(422, str(err)) from err

    @router.post("/review/api/answer", summary="Store same / different / skip for a pair")
    def answer(body: Answer) -> dict[str, Any]:
        try:
            row = record_answer(folder, body.group_id, body.fragment_id, body.id, body.answer)
        except HumdexError as err:
            raise HTTPException(404 if str(err).startswith("no ") else 422, str(err)) from err
        return {"id": row.id, "status": row.extra.get("status", ""),
                "check_by_crowdsource": bool(row.check_by_crowdsource),
                "remaining": len(review_queue(folder))}

    return router


def create_review_app(folder: str | Path, access: AccessConfig | None = None) -> FastAPI:
    """The review page and API; `access` (humdex.service.access) guards it like `humdex serve`."""
    app = FastAPI(title="humdex review")

    @app.exception_handler(HumdexError)
    async def user_error(_: Request, err: HumdexError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    app.include_router(review_router(folder))
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.add_middleware(AccessGuard, config=access or AccessConfig())  # Host/Origin checks, token for answers
    return app
