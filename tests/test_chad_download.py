"""CHAD tooling offline: metadata validation, downloads through a fake fetcher (exact cuts, resume,
unavailable videos, nothing half-written), the hummings tar."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from humdex.cli import main
from humdex.errors import HumdexError
from humdex.training.chad import read_metadata
from humdex.training.chad_download import Unavailable, download, ingest_hums, validate_metadata

SR = 16000
META = """group_id,fragment_id,id,audio_type,youtube_id,interval,correlation,check_by_crowdsource,is_available,duration
1,0,10,original,AAAAAAAAAAA,"(1.23456, 3.5)",,False,True,2.26544
1,0,11,cover,BBBBBBBBBBB,"(0.5, 2.71828)",0.61,False,True,2.21828
1,1,12,original,AAAAAAAAAAA,"(4.0, 6.25)",,False,True,2.25
1,1,13,cover,CCCCCCCCCCC,"(2.0, 4.0)",0.7,False,True,2.0
1,0,90,humming,,"(0, 2.0)",,,True,2.0
"""


def source_audio(seed: int, seconds: float = 8.0) -> np.ndarray:
    """Noise quantised to 16-bit: any cut can be compared sample by sample."""
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, round(seconds * SR))
    return (np.round(x * 32767) / 32767).astype(np.float32)


class FakeFetcher:
    """Serves local audio as if downloaded; counts fetches; some ids unavailable; can crash."""

    def __init__(self, folder: Path, missing=(), crash_after: int | None = None) -> None:
        self.folder, self.missing, self.crash_after, self.calls = folder, set(missing), crash_after, []

    def __call__(self, vid: str, dest: Path) -> Path:
        self.calls.append(vid)
        if self.crash_after is not None and len(self.calls) > self.crash_after:
            (dest / f"{vid}.wav.part").write_bytes(b"half")  # a download cut short
            raise OSError("connection reset")
        if vid in self.missing:
            raise Unavailable("Video unavailable")
        out = dest / f"{vid}.wav"
        out.write_bytes((self.folder / f"{vid}.wav").read_bytes())
        return out


@pytest.fixture
def chad(tmp_path):
    (tmp_path / "meta.csv").write_text(META)
    src = tmp_path / "yt"
    src.mkdir()
    for n, vid in enumerate(("AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC")):
        wavfile.write(src / f"{vid}.wav", SR, (source_audio(n) * 32767).astype("<i2"))
    return tmp_path


def test_validate_counts_and_finds_problems(chad, capsys) -> None:
    v = validate_metadata(chad / "meta.csv")
    assert v.problems == [] and v.types == {"original": 2, "cover": 2, "humming": 1}
    assert (v.groups, v.fragments, v.videos) == (1, 2, 3)
    assert main(["chad", "validate", str(chad / "meta.csv")]) == 0
    bad = META.replace('"(4.0, 6.25)"', '"(6.25, 4.0)"').replace("CCCCCCCCCCC", "short")
    bad = bad.replace("1,0,10,original", "1,0,10,singer")
    (chad / "bad.csv").write_text(bad)
    problems = validate_metadata(chad / "bad.csv").problems
    assert any("empty or negative" in p for p in problems)
    assert any("youtube_id" in p for p in problems)
    assert any("singer" in p for p in problems) and any("no original" in p for p in problems)
    assert main(["chad", "validate", str(chad / "bad.csv")]) == 2
    assert main(["chad", "validate", str(chad / "nope.csv")]) == 2


def test_download_cuts_exactly_resumes_and_reports_unavailable(chad) -> None:
    out = chad / "out"
    crashing = FakeFetcher(chad / "yt", missing={"CCCCCCCCCCC"}, crash_after=1)
    report = download(chad / "meta.csv", out, crashing, workers=1, rate=100, progress=False)
    assert set(report.errors) == {"BBBBBBBBBBB", "CCCCCCCCCCC"} and report.written == 2
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*"))  # nothing half-written lands
    fetcher = FakeFetcher(chad / "yt", missing={"CCCCCCCCCCC"})
    report = download(chad / "meta.csv", out, fetcher, workers=2, rate=100, progress=False)
    assert "AAAAAAAAAAA" not in fetcher.calls  # fetched before the crash: kept
    assert report.unavailable == {"CCCCCCCCCCC": "Video unavailable"}
    rows = {r.id: r for r in read_metadata(out / "metadata.csv")}
    assert set(rows) == {"10", "11", "12"}  # the unavailable cover and the hum are not here
    sources = {"10": 0, "11": 1, "12": 0}
    for rid, n in sources.items():
        r = rows[rid]
        rate, pcm = wavfile.read(r.audio_path(out))
        a, b = round(r.interval[0] * SR), round(r.interval[1] * SR)
        want = np.round(source_audio(n)[a:b] * 32767).astype(np.int16)
        assert rate == SR and len(pcm) == b - a and np.abs(pcm.astype(int) - want).max() <= 1
    assert rows["10"].interval == (1.23456, 3.5)  # exact floats, not whole seconds
    avail = (out / "availability.csv").read_text()
    assert "CCCCCCCCCCC,unavailable,1" in avail and "AAAAAAAAAAA,ok,2" in avail
    again = FakeFetcher(chad / "yt", missing={"CCCCCCCCCCC"})
    report = download(chad / "meta.csv", out, again, progress=False)
    assert again.calls == ["CCCCCCCCCCC"] and report.skipped == 3 and report.written == 0


def test_rate_limit_spaces_fetches(chad, monkeypatch) -> None:
    """Fetch starts come at most `rate` per second: measured on the limiter's own clock (a fake
    one), since threads on a loaded machine record wall-clock times with their own delays."""
    import humdex.training.chad_download as module

    clock = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(module.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    starts = []

    def fetcher(vid, dest):
        starts.append(clock[0])
        return FakeFetcher(chad / "yt")(vid, dest)

    download(chad / "meta.csv", chad / "out", fetcher, workers=1, rate=10, progress=False)
    assert len(starts) == 3 and np.diff(starts) == pytest.approx([0.1, 0.1])
    limiter = module.RateLimiter(2.0)
    clock[0] = 5.0
    limiter.wait()
    clock[0] = 7.0  # long after the last start: no wait
    limiter.wait()
    assert clock[0] == 7.0
    limiter.wait()
    assert clock[0] == pytest.approx(7.5)


def test_ingest_hums_tar(chad) -> None:
    buf = io.BytesIO()
    wav = io.BytesIO()
    wavfile.write(wav, SR, np.zeros(SR, np.int16))
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("chad_hummings/fragments/1/0/90.wav")
        info.size = len(wav.getvalue())
        tar.addfile(info, io.BytesIO(wav.getvalue()))
    (chad / "hums.tar").write_bytes(buf.getvalue())
    out = chad / "out"
    assert main(["chad", "ingest-hums", str(chad / "hums.tar"), "--out", str(out),
                 "--metadata", str(chad / "meta.csv")]) == 0
    assert (out / "fragments" / "1" / "0" / "90.wav").is_file()
    assert [r.id for r in read_metadata(out / "metadata.csv")] == ["90"]
    assert ingest_hums(chad / "hums.tar", out) == 0  # already there
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../fragments/x.wav")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (chad / "evil.tar").write_bytes(evil.getvalue())
    with pytest.raises(HumdexError, match="unsafe"):
        ingest_hums(chad / "evil.tar", out)
