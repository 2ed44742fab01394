"""Property-based fuzzing: the decoders, pitch-file readers, MIDI reader and the HTTP API answer
anything with a result or one user error (HumdexError / 4xx), never a crash, a 500, or a melody
past the limits. Few examples each, so the suite stays fast."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bomb_files import _midi
from humdex.errors import HumdexError
from humdex.frontend.limits import MAX_NOTE_S, MAX_SONG_S

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _wav(rate: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(np.arange(rate) * 0.05)).astype(np.float32), rate, format="WAV")
    return buf.getvalue()


GOOD_WAV = _wav()


@st.composite
def mutated(draw: st.DrawFn, data: bytes, max_edits: int = 6) -> bytes:
    """`data` with a few bytes overwritten, or cut short."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        out = out[: draw(st.integers(0, len(out)))]
    return bytes(out)


@FAST
@given(data=mutated(GOOD_WAV[:2000], max_edits=8))
def test_audio_decoder_on_mutated_wav_headers(data: bytes) -> None:
    from humdex.frontend.audio import decode

    try:
        audio = decode(data, 16000, suffix_hint=".wav", max_s=60)
    except HumdexError:
        return
    assert audio.dtype == np.float32 and audio.ndim == 1 and 0 < len(audio) <= 60 * 16000
    assert np.all(np.isfinite(audio))


@settings(max_examples=15, deadline=None)
@given(data=st.binary(min_size=1, max_size=300), suffix=st.sampled_from([".mp3", ".ogg", ".webm", ""]))
def test_audio_decoder_on_random_bytes(data: bytes, suffix: str) -> None:
    from humdex.frontend.audio import decode

    try:
        audio = decode(data, 16000, suffix_hint=suffix or None, max_s=60)
    except HumdexError:
        return
    assert len(audio) <= 60 * 16000


_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                    st.integers(-10**6, 10**13), st.sampled_from(["nan", "inf", "-0", "1e309", "x"]))


@FAST
@given(rows=st.lists(st.lists(_number, min_size=1, max_size=3), max_size=40),
       suffix=st.sampled_from([".pv", ".csv", ".tsv", ".f0"]), sep=st.sampled_from([",", "\t", " ", ";"]))
def test_pitch_file_readers(tmp_path_factory: pytest.TempPathFactory, rows: list[list[object]],
                            suffix: str, sep: str) -> None:
    from humdex.frontend.pitchfile import read_pitch_file

    path = tmp_path_factory.mktemp("pitch") / f"q{suffix}"
    path.write_text("\n".join(sep.join(map(str, row)) for row in rows))
    try:
        contour = read_pitch_file(path)
    except HumdexError:
        return
    assert contour.duration_s <= MAX_SONG_S + 1 and contour.voiced.any()


@FAST
@given(ticks_per_beat=st.integers(1, 0x7FFF), tempo=st.one_of(st.none(), st.integers(1, 0xFFFFFF)),
       note_ticks=st.integers(0, 2**28 - 1))
def test_midi_reader_on_extreme_timing(tmp_path_factory: pytest.TempPathFactory, ticks_per_beat: int,
                                       tempo: int | None, note_ticks: int) -> None:
    from humdex.frontend.melody import read_melody

    path = tmp_path_factory.mktemp("midi") / "m.mid"
    path.write_bytes(_midi(ticks_per_beat, tempo, note_ticks))
    _check_melody(path, read_melody)


@FAST
@given(data=mutated(_midi(480, 500_000, 960), max_edits=5))
def test_midi_reader_on_mutated_files(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from humdex.frontend.melody import read_melody

    path = tmp_path_factory.mktemp("midi") / "m.mid"
    path.write_bytes(data)
    _check_melody(path, read_melody)


def _check_melody(path: Path, read) -> None:  # type: ignore[no-untyped-def]
    try:
        notes = read(path)
    except HumdexError:
        return
    assert all(n.duration_s <= MAX_NOTE_S + 1e-9 for n in notes)
    assert max((n.end_s for n in notes), default=0.0) <= MAX_SONG_S
    assert all(math.isfinite(n.onset_s) for n in notes)


# ------------------------------------------------------------------------------ HTTP


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    pytest.importorskip("fastapi")
    from humdex.service.access import AccessConfig
    from humdex.service.server import ServerConfig, create_app
    from service_data import build_catalog

    db = build_catalog(tmp_path_factory.mktemp("fuzz"), ["ode_to_joy", "twinkle"])
    config = ServerConfig(max_query_bytes=2**20, max_song_bytes=2**20,
                          access=AccessConfig(bind_host="0.0.0.0"))  # any Host, no token: writes open
    return create_app(db, config)


@pytest.fixture(scope="module")
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    return TestClient(app, raise_server_exceptions=False)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(st.binary(min_size=1, max_size=400), mutated(GOOD_WAV[:3000])),
       name=st.text(max_size=40), endpoint=st.sampled_from(["/search", "/songs"]),
       song_id=st.one_of(st.none(), st.text(max_size=140)))
def test_upload_endpoints_never_fail_with_500(client, data: bytes, name: str, endpoint: str,  # type: ignore[no-untyped-def]
                                              song_id: str | None) -> None:
    fields = {"song_id": song_id} if endpoint == "/songs" and song_id is not None else None
    resp = client.post(endpoint, files={"file": (name or "f", data)}, data=fields)
    assert resp.status_code < 500, (resp.status_code, resp.text)
    if resp.status_code >= 400:
        assert isinstance(resp.json()["detail"], (str, list))


def test_openapi_schema_operations_never_fail_with_500(app) -> None:  # type: ignore[no-untyped-def]
    """schemathesis: cases generated from the service's own OpenAPI schema, every operation."""
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6

    for operation in operations:
        @settings(max_examples=10, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(checks=[not_a_server_error])

        check()
