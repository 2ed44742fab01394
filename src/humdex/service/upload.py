"""HTTP uploads: the request body size limit, and an upload (multipart `file` or raw body) as a query."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from humdex.errors import AudioError, HumdexError

# raw-body uploads: content type -> file suffix (a hint for the decoder)
CONTENT_SUFFIXES = {
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav",
    "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/ogg": ".ogg", "audio/opus": ".opus",
    "audio/webm": ".webm", "video/webm": ".webm", "audio/mpeg": ".mp3", "audio/mp3": ".mp3",
    "audio/mp4": ".m4a", "audio/x-m4a": ".m4a", "audio/aac": ".aac", "text/csv": ".csv",
}


class ApiError(HumdexError):
    """A request the service refuses, with its HTTP status (413 too large, 415 wrong type, ...)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, eq=False)
class Upload:
    """An uploaded file: its name (for messages and its suffix), bytes and the other form fields."""

    name: str
    data: bytes
    content_type: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        suffix = Path(self.name).suffix.lower()
        return suffix or CONTENT_SUFFIXES.get(self.content_type.split(";")[0].strip().lower(), "")

    def to_query(self, max_query_s: float) -> Any:
        """The upload as a search Query: a pitch file read as such, anything else decoded as audio.

        Raises AudioError for undecodable, silent, too short or too long (> max_query_s) audio.
        """
        from humdex.catalog.ingest import PITCH_SUFFIXES
        from humdex.frontend import audio
        from humdex.search import Query, load_query, query_from_audio

        if self.suffix in PITCH_SUFFIXES:
            with tempfile.TemporaryDirectory(prefix="humdex-query-") as tmp:
                path = Path(tmp) / f"query{self.suffix}"
                path.write_bytes(self.data)
                try:
                    query = load_query(path)
                except HumdexError as err:  # name the upload, not the server's temporary file
                    raise type(err)(str(err).replace(str(path), self.name)) from None
            if query.contour.duration_s > max_query_s:
                raise AudioError(f"{self.name}: query is {query.contour.duration_s:.1f} s long; "
                                 f"this server accepts at most {max_query_s:g} s")
            return Query(self.name, query.contour, query.pitch_ms)
        samples = audio.decode(self.data, audio.SAMPLE_RATE, suffix_hint=self.suffix or None,
                               name=self.name, max_s=max_query_s)
        seconds = audio.duration_s(samples, audio.SAMPLE_RATE)
        if seconds > max_query_s:
            raise AudioError(f"{self.name}: query is {seconds:.1f} s long; this server accepts "
                             f"at most {max_query_s:g} s")
        return query_from_audio(samples, audio.SAMPLE_RATE, self.name)


async def read_upload(request: Request, filename: str | None,
                      fields: tuple[str, ...] = ()) -> Upload:
    """The request's file: multipart field `file` (plus text `fields`), or else the raw body."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=len(fields) + 4)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ApiError("multipart upload needs a file in the field `file`", 422)
        data = await file.read()
        name = Path(file.filename or filename or "upload").name
        values = {k: str(form[k]) for k in fields if isinstance(form.get(k), str) and form[k]}
        upload = Upload(name, data, file.content_type or "", values)
    else:
        if fields:
            raise ApiError("send the song as multipart/form-data with the field `file`", 415)
        data = await request.body()
        upload = Upload(Path(filename or "upload").name, data, content_type)
    if not upload.data:
        raise ApiError(f"{upload.name}: the upload is empty (0 bytes)", 422)
    return upload


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a POST/PUT body over the limit of its path (Content-Length or
    counted while streaming), before the endpoint reads more than the limit."""

    def __init__(self, app: ASGIApp, limits: dict[str, int]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = None
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT"):
            limit = self.limits.get(scope["path"].rstrip("/"))
        if limit is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > limit:
            await self._refuse(limit, scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(limit, scope, receive, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"upload is larger than this server's limit of {limit / 2**20:g} MB"
        await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
