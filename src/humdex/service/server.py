"""The HTTP service: an app factory over a catalog (REST API + the web page), no business logic.

`create_app(db_dir_or_catalog)` -> FastAPI app. Uploads are decoded with humdex.frontend.audio, searched
with humdex.search and added with humdex.catalog.catalog; every user error becomes a 4xx JSON answer
{"detail": "<one line>"} and changes nothing. Searches run on a snapshot of the catalog in a
worker thread (CPU-bound), so adds/removes never tear a search and the event loop stays free.
"""

from __future__ import annotations

import math
import re
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from humdex import __version__
from humdex.catalog.catalog import Catalog, Snapshot, Song
from humdex.errors import CatalogError, HumdexError
from humdex.frontend.contour import Contour
from humdex.nomatch import NoMatchConfig, config_for
from humdex.service.access import AccessConfig, AccessGuard, access_from_args
from humdex.service.upload import ApiError, BodyLimit, Upload, read_upload
from humdex.settings import settings

WEB_DIR = Path(__file__).parent / "web"
UPLOADS_DIR = "uploads"  # inside the catalog folder: song files added over HTTP
SONG_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.,()'+-]{0,127}$")


@dataclass(frozen=True)
class ServerConfig:
    """Every limit of the service."""

    max_query_bytes: int = 20 * 2**20  # a query upload (5 min of 16-bit 16 kHz WAV is ~10 MB)
    max_song_bytes: int = 100 * 2**20
    max_query_s: float = 60.0  # longer recorded queries are refused (humdex.frontend.audio allows 300 s)
    max_top: int = 100
    search_threads: int = 2  # concurrent searches (CPU-bound); more requests wait their turn
    max_queue_s: float = 60.0  # a search that waits longer than this for a thread gets 503 (busy)
    plot_points: int = 1500  # at most this many frames per contour in detail answers
    no_match: NoMatchConfig | None = None  # None: each method's calibrated rule (nomatch.config_for)
    access: AccessConfig = field(default_factory=AccessConfig)  # Host/Origin checks and the write token (service.access)
    review_folder: Path | None = None  # a mined folder (humdex mine --out): its review queue at /review


def create_app(catalog: Catalog | str | Path, config: ServerConfig = ServerConfig()) -> FastAPI:
    """The humdex web service over `catalog` (a Catalog or the folder of an existing one)."""
    if not isinstance(catalog, Catalog):
        catalog = Catalog.open(catalog, create=False)
    service = _Service(catalog, config)
    from humdex.classical.dtw import warmup

    warmup()  # compile the DTW kernels now: requests in several threads must not compile them at once
    app = _fastapi(title="humdex", version=__version__,
                   description="Query by humming: find the song a hummed melody comes from.")
    app.add_middleware(BodyLimit, limits={"/search": config.max_query_bytes,
                                          "/songs": config.max_song_bytes})
    if config.access.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.access.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-Humdex-Token", "Content-Type"])
    app.add_middleware(AccessGuard, config=config.access)  # outermost: refused before anything

    @app.exception_handler(HumdexError)
    async def user_error(_: Request, err: HumdexError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(ApiError)
    async def upload_error(_: Request, err: ApiError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    if config.review_folder is not None:  # the mined pairs' review queue, behind the same guard
        from humdex.service.review import review_router

        app.include_router(review_router(config.review_folder))
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/health", summary="Liveness and catalog size")
    def health() -> dict[str, Any]:
        from humdex.search import resolve_method

        snap = catalog.snapshot()
        method = resolve_method(snap)
        rule = config.no_match or config_for(method, snap.mostly_audio, len(snap.songs))
        return {"status": "ok", "version": __version__, "songs": len(snap.songs),
                "generation": snap.generation, "method": method,
                "match_threshold": rule.min_score, "match_min_margin": rule.min_margin}

    @app.post("/search", summary="Find the song a hummed query comes from",
              openapi_extra=_UPLOAD_BODY)
    async def search(request: Request, top: int = 10, from_start: bool = False,
                     detail: bool = False, filename: str | None = None) -> dict[str, Any]:
        """Query audio (any format the CLI reads) or a pitch file (.pv, f0 CSV), as the multipart
        field `file` or as the raw body. The answer is the `humdex search --json` contract plus
        the no-match decision (`match`, `threshold`, `margin`, `min_margin`); with `detail=true`
        also the query's pitch contour and the best song's melody around the match."""
        if not 1 <= top <= config.max_top:
            raise ApiError(f"top must be between 1 and {config.max_top}", 422)
        upload = await read_upload(request, filename)
        with anyio.move_on_after(config.max_queue_s) as waited:
            await service.search_limiter.acquire()
        if waited.cancelled_caught:  # a burst must not pile up without bound
            raise ApiError(f"the server is busy (no search thread free for {config.max_queue_s:g} s); "
                           "try again shortly", 503)
        try:
            return await anyio.to_thread.run_sync(service.search, upload, top, from_start, detail)
        finally:
            service.search_limiter.release()

    @app.get("/songs", summary="The songs of the catalog")
    def songs() -> dict[str, Any]:
        snap = catalog.snapshot()
        return {"count": len(snap.songs), "generation": snap.generation,
                "songs": [_song_json(s) for s in snap.songs]}

    @app.get("/songs/{song_id}", summary="One song")
    def song(song_id: str) -> dict[str, Any]:
        snap = catalog.snapshot()
        return _song_json(snap.songs[_index_or_404(snap, song_id)])

    @app.get("/songs/{song_id}/melody", summary="A song's reference melody (MIDI pitch per frame)")
    def melody(song_id: str, start_s: float = 0.0, end_s: float | None = None) -> dict[str, Any]:
        if not all(math.isfinite(v) for v in (start_s, 0.0 if end_s is None else end_s)):
            raise ApiError("start_s and end_s must be finite numbers of seconds", 422)
        return service.melody_json(catalog.snapshot(), song_id, start_s, end_s)

    @app.post("/songs", status_code=201, summary="Add a song (MIDI, score, audio or pitch file)",
              openapi_extra=_SONG_BODY)
    async def add_song(request: Request) -> dict[str, Any]:
        """Multipart: `file` (required), `title`, `artist`, `song_id` (default: the file's stem).
        409 if the id is taken; the catalog is unchanged unless the answer is 201."""
        upload = await read_upload(request, None, fields=("title", "artist", "song_id"))
        return await anyio.to_thread.run_sync(service.add_song, upload)

    @app.delete("/songs/{song_id}", summary="Remove a song")
    def remove_song(song_id: str) -> dict[str, Any]:
        return service.remove_song(song_id)

    return app


def _fastapi(**kwargs: Any) -> FastAPI:
    """FastAPI whose /docs page serves Swagger UI's files from the fastapi-offline package (no CDN:
    it works offline); plain FastAPI where that package is missing."""
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        return FastAPI(**kwargs)
    return FastAPIOffline(**kwargs)


class _Service:
    """The work behind the endpoints (runs in worker threads)."""

    def __init__(self, catalog: Catalog, config: ServerConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.search_limiter = anyio.CapacityLimiter(config.search_threads)
        self._add_lock = threading.Lock()  # one HTTP add/remove at a time: ids stay unique

    def search(self, upload: Upload, top: int, from_start: bool, detail: bool) -> dict[str, Any]:
        from humdex.search import search

        query = upload.to_query(self.config.max_query_s)
        snap = self.catalog.snapshot()  # one generation for the whole answer
        result = search(query, snap, top=top, from_start=from_start, db_dir=self.catalog.db_dir,
                        no_match=self.config.no_match)
        answer = result.to_json()
        if detail:
            answer["query_contour"] = self._contour_json(query.contour)
            best = result.hits[0] if result.hits else None
            answer["melody"] = None
            if best is not None and best.start_s is not None and best.end_s is not None:
                pad = 0.25 * (best.end_s - best.start_s) + 1.0
                answer["melody"] = self.melody_json(snap, best.song_id, best.start_s - pad,
                                                    best.end_s + pad)
        return answer

    def melody_json(self, snap: Snapshot, song_id: str, start_s: float,
                    end_s: float | None) -> dict[str, Any]:
        melody = snap.melodies[_index_or_404(snap, song_id)]
        first = max(0, int(np.floor(start_s / melody.hop_s)))
        last = len(melody.midi) if end_s is None else max(first, int(np.ceil(end_s / melody.hop_s)))
        segment = Contour(melody.midi[first:last], melody.hop_s)
        return {"song_id": song_id, "start_s": round(first * melody.hop_s, 3),
                **self._contour_json(segment)}

    def _contour_json(self, contour: Contour) -> dict[str, Any]:
        hop_s = max(contour.hop_s, contour.duration_s / self.config.plot_points)
        small = contour.resample(hop_s) if hop_s > contour.hop_s else contour
        midi = [None if not np.isfinite(m) else round(float(m), 2) for m in small.midi]
        return {"hop_s": small.hop_s, "midi": midi}

    def add_song(self, upload: Upload) -> dict[str, Any]:
        from humdex.catalog.ingest import SONG_SUFFIXES

        suffix = upload.suffix
        if suffix not in SONG_SUFFIXES:
            raise ApiError(f"{upload.name}: not a song file (expected one of "
                              f"{', '.join(SONG_SUFFIXES)})", 415)
        song_id = (upload.fields.get("song_id") or Path(upload.name).stem).strip()
        if not SONG_ID_RE.match(song_id):
            raise ApiError(f"song id {song_id!r} is not allowed (letters, digits, space and "
                              "_.,()'+- only, at most 128 characters)", 422)
        folder = self.catalog.db_dir / UPLOADS_DIR
        folder.mkdir(exist_ok=True)
        with self._add_lock:
            if any(s.song_id == song_id for s in self.catalog.songs()):
                raise ApiError(f"song id {song_id!r} is already in the catalog; remove it "
                                  "first or choose another song_id", 409)
            path = (folder / f"{song_id}{suffix}").resolve()
            path.write_bytes(upload.data)
            try:
                report = self._add_file(path, song_id, upload.fields)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            if report.failed or song_id not in report.added:
                path.unlink(missing_ok=True)
                reason = report.failed[0][1] if report.failed else "nothing was added"
                raise ApiError(f"{upload.name}: {reason}", 422)
        song = self.catalog.song(song_id)
        return {"added": [song_id], "song": _song_json(song), "count": len(self.catalog)}

    def _add_file(self, path: Path, song_id: str, fields: dict[str, str]) -> Any:
        import csv

        with tempfile.TemporaryDirectory(prefix="humdex-add-") as tmp:
            manifest = Path(tmp) / "manifest.csv"
            with open(manifest, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow([str(path), song_id, fields.get("title") or "",
                                        fields.get("artist") or ""])
            return self.catalog.add_files([path], manifest=manifest, progress=False)

    def remove_song(self, song_id: str) -> dict[str, Any]:
        with self._add_lock:
            snap = self.catalog.snapshot()
            song = snap.songs[_index_or_404(snap, song_id)]
            self.catalog.remove([song_id])
            source = Path(song.source)
            if source.parent == (self.catalog.db_dir / UPLOADS_DIR).resolve():
                source.unlink(missing_ok=True)
        return {"removed": song_id, "count": len(self.catalog)}


def _index_or_404(snap: Snapshot, song_id: str) -> int:
    try:
        return snap.index_of(song_id)
    except CatalogError:
        raise ApiError(f"no song with id {song_id!r} in the catalog", 404) from None


def _song_json(song: Song) -> dict[str, Any]:
    return {"song_id": song.song_id, "title": song.title, "artist": song.artist,
            "kind": song.kind, "duration_s": song.duration_s}


_UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "audio/*": {"schema": {"type": "string", "format": "binary"}}}}}

_SONG_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "title": {"type": "string"},
        "artist": {"type": "string"}, "song_id": {"type": "string"}}}}}}}


def run_serve(args: Any) -> int:
    """Serve until interrupted; CatalogError (no catalog in --db) goes to the CLI's error path."""
    import uvicorn

    from humdex.search import resolve_method

    access, lines = access_from_args(args, settings().token)
    review = None
    if args.review is not None:
        from humdex.training.chad import METADATA_NAME

        review = Path(args.review)
        if not (review / METADATA_NAME).is_file():
            raise HumdexError(f"--review {review}: not a mined folder (no {METADATA_NAME}; see humdex mine)")
    config = ServerConfig(access=access, review_folder=review)
    catalog = Catalog.open(args.db, create=False)
    if args.threshold is not None or args.min_margin is not None:  # one fixed rule from now on
        snap = catalog.snapshot()
        rule = config_for(resolve_method(snap), snap.mostly_audio, len(snap.songs))
        if args.threshold is not None:
            rule = replace(rule, min_score=args.threshold)
        if args.min_margin is not None:
            rule = replace(rule, min_margin=args.min_margin)
        config = replace(config, no_match=rule)
    if args.max_upload_mb is not None:
        config = replace(config, max_query_bytes=int(args.max_upload_mb * 2**20))
    app = create_app(catalog, config)
    for line in lines:
        print(line, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0

