"""Aligned-fragment mining: the FFT alignment, judging against true time maps, `humdex mine` end to end."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.io import wavfile

from conftest import random_melody, sing
from humdex.cli import main
from humdex.learned.model import default_model_path
from humdex.synth.timemap import TimeMap
from humdex.training.alignment import AlignConfig, CoverSpectrum, align_fragment, stretch_sequence
from humdex.training.chad import read_metadata
from humdex.training.mining import MineConfig, calibrated, mine, null_scores, read_groups
from humdex.training.mining_eval import judge_pair, perf_times_at, quality

HOP, WIN = 0.25, 3.0
CQT_MODEL = str(default_model_path("cqt"))  # CQT features: 40x faster than CREPE on a busy CPU


def smooth_sequence(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    """(n, dim) unit vectors drifting slowly (neighbouring fingerprints are alike, like a model's)."""
    noise = rng.standard_normal((n + 6, dim))
    x = np.stack([np.convolve(noise[:, d], np.hanning(7), mode="valid") for d in range(dim)], axis=1)[:n]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_alignment_finds_offset_and_tempo_of_a_stretched_fragment() -> None:
    rng = np.random.default_rng(0)
    original = smooth_sequence(rng, 160)
    ratio = 1.15  # the cover sings 15 % slower and starts 5 s (20 hops) later
    cover = np.concatenate([smooth_sequence(rng, 20), stretch_sequence(original, ratio)])
    cover = cover + 0.02 * rng.standard_normal(cover.shape).astype(np.float32)
    cover /= np.linalg.norm(cover, axis=1, keepdims=True)
    cfg = AlignConfig(hop_s=HOP, window_s=0.0)  # fingerprints of instants: no window to centre
    spectrum = CoverSpectrum(cover, 80)
    for first in (10, 60, 120):
        al = align_fragment(original[first:first + 30], spectrum, cfg)
        true_start = 5.0 + first * HOP * ratio  # the cover sings original second t at 5 + t * ratio
        assert al.score > 0.9
        assert al.ratio == pytest.approx(ratio, rel=0.04)
        assert abs(al.start_s - true_start) < 0.1, (first, al)
        assert abs(al.end_s - (true_start + 29 * HOP * ratio)) < 0.15
    unrelated = align_fragment(smooth_sequence(np.random.default_rng(9), 30), spectrum, cfg)
    assert unrelated.score < 0.6


def test_margin_tells_a_collapsed_model_from_a_match() -> None:
    """A poorly trained model maps everything to about the same vector: every placement scores
    high, so the raw score cannot reject, but the peak does not stand out."""
    rng = np.random.default_rng(4)
    common = rng.standard_normal(32)

    def collapsed(n):
        x = common + 0.1 * rng.standard_normal((n, 32))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    cfg = AlignConfig(hop_s=HOP, window_s=0.0)
    weak = align_fragment(collapsed(30), CoverSpectrum(collapsed(150), 80), cfg)
    assert weak.score > 0.9 and weak.margin < 0.05
    original = smooth_sequence(rng, 150)
    good = align_fragment(original[40:70], CoverSpectrum(original, 80), cfg)
    assert good.score > 0.95 and good.margin > 0.5


def test_fft_correlation_equals_direct_sum() -> None:
    rng = np.random.default_rng(1)
    cover, frag = smooth_sequence(rng, 50, 8), smooth_sequence(rng, 12, 8)
    c = CoverSpectrum(cover, 12).correlation(frag)
    for offset in (-5, 0, 7, 45):
        j = np.arange(12)
        ok = (offset + j >= 0) & (offset + j < 50)
        direct = float(np.sum(frag[j[ok]] * cover[offset + j[ok]]))
        assert c[offset + 12] == pytest.approx(direct, abs=1e-4)


def test_judging_with_a_cover_that_repeats_a_phrase() -> None:
    original = TimeMap([0.0, 1.0, 11.0], [0.0, 0.0, 10.0])  # 1 s of lead silence, then the score
    # the cover sings score 0-6 s, repeats 2-6 s, then goes on to 10 s, all at its own speed 1.2x
    cover = TimeMap([0.0, 7.2, 7.2, 12.0, 16.8], [0.0, 6.0, 2.0, 6.0, 10.0])
    assert perf_times_at(cover, 3.0) == pytest.approx([3.6, 8.4])
    right = judge_pair(original, (3.0, 7.0), cover, (8.4 - 1.2, 8.4 + 3.6), score=0.8)
    assert right.alignable and right.correct and right.mid_error_s < 0.5
    wrong = judge_pair(original, (3.0, 7.0), cover, (12.0, 16.0), score=0.7)
    assert wrong.alignable and not wrong.correct
    silent = judge_pair(original, (0.0, 0.9), cover, (0.0, 1.0), score=0.5)
    assert not silent.alignable
    q = quality([right, wrong, silent], accept=0.75, review=0.6)
    assert (q.n_accepted, q.precision, q.recall) == (1, 1.0, 0.5)
    assert q.review_share == pytest.approx(1 / 3)


def write_wav(path, audio) -> None:
    wavfile.write(path, 16000, (np.clip(audio, -1, 1) * 32767).astype("<i2"))


@pytest.fixture
def cover_groups(tmp_path):
    """One group: an original, a slower transposed cover with 2 s of lead-in, and an unrelated song
    posing as a cover; the true map: cover_s = 2 + original_s / 1.15."""
    rng = np.random.default_rng(3)
    melody, other = random_melody(rng, 36), random_melody(rng, 36)
    write_wav(tmp_path / "orig.wav", sing(melody, seed=1))
    write_wav(tmp_path / "cover.wav", np.concatenate([np.zeros(32000, np.float32),
                                                      sing(melody, tempo=1 / 1.15, transpose_st=3, seed=2)]))
    write_wav(tmp_path / "other.wav", sing(other, seed=3))
    (tmp_path / "groups.csv").write_text(
        "group_id,role,path\ng1,original,orig.wav\ng1,cover,cover.wav\ng1,cover,other.wav\n")
    return tmp_path / "groups.csv"


def test_mine_accepts_the_cover_rejects_the_stranger_and_resumes(cover_groups, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HUMDEX_INT8", "0")
    out = tmp_path / "mined"
    groups = read_groups(cover_groups)
    assert [c.id for c in groups[0].covers] == ["cover", "other"]
    report = mine(groups, CQT_MODEL, out, MineConfig(accept=0.75, review=0.5, fragment_s=6.0, fragment_hop_s=6.0), progress=False)
    rows = read_metadata(out / "metadata.csv")
    originals = {r.fragment_id: r for r in rows if r.audio_type == "original"}
    assert len(originals) >= 3
    covers = [r for r in rows if r.extra["source"].endswith("cover.wav")]
    strangers = [r for r in rows if r.extra["source"].endswith("other.wav")]
    scores_true = np.array([r.correlation for r in covers])
    scores_false = np.array([r.correlation for r in strangers])
    assert scores_true.min() > scores_false.max(), (scores_true, scores_false)
    for r in covers:
        if r.extra["status"] != "accepted":
            continue
        a, b = originals[r.fragment_id].interval
        assert r.interval[0] == pytest.approx(2 + a * 1.15, abs=0.5)
        assert r.interval[1] == pytest.approx(2 + b * 1.15, abs=0.7)
        sr, pcm = wavfile.read(r.audio_path(out))  # cut at the exact interval, to the sample
        assert len(pcm) == round(r.interval[1] * sr) - round(r.interval[0] * sr)
    assert sum(r.extra["status"] == "accepted" for r in covers) >= 2
    assert all(r.extra["status"] != "accepted" for r in strangers)
    assert all(not r.audio_path(out).is_file() for r in rows if r.extra["status"] == "rejected")
    assert report.groups == 1 and report.counts["accepted"] >= 2
    again = mine(groups, CQT_MODEL, out, MineConfig(), progress=False)  # resumable: nothing redone
    assert (again.groups, again.skipped) == (0, 1)
    assert [r.id for r in read_metadata(out / "metadata.csv")] == [r.id for r in rows]


def test_mining_with_tracked_contours_feeds_a_crepe_model_the_search_path(cover_groups, tmp_path, capsys) -> None:
    """frames="contour": songs are fingerprinted from the melody the song tracker follows (as the
    default search does); the cache keeps the (T,) contour; the cover still beats the stranger.
    A CQT model cannot be fed contours: one line, nothing mined."""
    out = tmp_path / "mined"
    config = MineConfig(fragment_s=6.0, fragment_hop_s=6.0, frames="contour")
    mine(read_groups(cover_groups), str(default_model_path("short")), out, config, progress=False)
    rows = read_metadata(out / "metadata.csv")
    true = [r.correlation for r in rows if r.extra["source"].endswith("cover.wav")]
    false = [r.correlation for r in rows if r.extra["source"].endswith("other.wav")]
    assert len(true) >= 3 and min(true) > max(false), (true, false)
    originals = {r.fragment_id: r for r in rows if r.audio_type == "original"}
    for r in rows:
        if r.extra["source"].endswith("cover.wav") and r.extra["status"] == "accepted":
            assert r.interval[0] == pytest.approx(2 + originals[r.fragment_id].interval[0] * 1.15, abs=0.6)
    cached = [np.load(p) for p in (out / ".cache").iterdir()]
    assert len(cached) == 3 and all(c.ndim == 1 and c.dtype == np.float32 for c in cached)
    assert np.nanmedian(cached[0]) > 40  # MIDI pitch, NaN where unvoiced
    assert main(["mine", str(cover_groups), "--model", CQT_MODEL, "--frames", "contour",
                 "--out", str(tmp_path / "o")]) == 2
    assert "cannot be fed tracked contours" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_calibrated_thresholds_are_quantiles_of_the_null() -> None:
    null = np.linspace(0.0, 1.0, 101)
    tuned = calibrated(MineConfig(accept=0.9, review=0.1, calibrate=0.02), null)
    assert (tuned.accept, tuned.review) == (pytest.approx(0.98), pytest.approx(0.90))
    assert calibrated(MineConfig(calibrate=0.19), null).review == pytest.approx(0.05)  # 1 - 5 x 0.19 < 0


def test_mining_with_calibrated_thresholds(cover_groups, tmp_path) -> None:
    """Thresholds from unrelated pairs (each group's fragments against the other group's cover):
    the true cover passes them, the stranger does not; they are kept for a resumed run."""
    root = cover_groups.parent
    rng = np.random.default_rng(3)  # the fixture's second melody, sung again: the other group's cover
    random_melody(rng, 36)
    write_wav(root / "other_cover.wav", sing(random_melody(rng, 36), tempo=0.9, transpose_st=-2, seed=9))
    csv = root / "two.csv"
    csv.write_text("group_id,role,path\ng1,original,orig.wav\ng1,cover,cover.wav\ng1,cover,other.wav\n"
                   "g2,original,other.wav\ng2,cover,other_cover.wav\n")
    groups = read_groups(csv)
    config = MineConfig(fragment_s=6.0, fragment_hop_s=6.0, calibrate=0.05)
    out = tmp_path / "mined"
    report = mine(groups, CQT_MODEL, out, config, progress=False)
    null = null_scores(groups, CQT_MODEL, config, out / ".cache")  # the features mining cached
    assert len(null) >= 6
    kept = json.loads((out / "calibration.json").read_text())
    assert (report.accept, report.review) == (kept["accept"], kept["review"])
    assert kept["accept"] == pytest.approx(np.quantile(null, 0.95), abs=1e-4) and kept["review"] <= kept["accept"]
    rows = read_metadata(out / "metadata.csv")
    status = {r.id: r.extra["status"] for r in rows if r.audio_type == "cover"}
    assert sum(s == "accepted" for k, s in status.items() if k.endswith("_cover")) >= 2
    assert all(s != "accepted" for k, s in status.items() if k.startswith("g1_") and k.endswith("_other"))
    kept["accept"] = kept["review"] = 0.999  # a resumed run sorts by the thresholds it started with
    (out / "calibration.json").write_text(json.dumps(kept))
    for meta in (out / "meta").glob("g2.csv"):
        meta.unlink()
    again = mine(groups, CQT_MODEL, out, config, progress=False)
    assert again.groups == 1 and again.accept == 0.999
    assert all(r.extra["status"] == "rejected" for r in read_metadata(out / "meta" / "g2.csv") if r.audio_type == "cover")


def test_mine_cli_refuses_bad_inputs(tmp_path, capsys) -> None:
    (tmp_path / "g.csv").write_text("group_id,role,path\ng1,original,a.wav\n")
    assert main(["mine", str(tmp_path / "g.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "no cover" in capsys.readouterr().err
    assert main(["mine", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "h.csv").write_text("group_id,role,path\ng1,singer,a.wav\n")
    assert main(["mine", str(tmp_path / "h.csv"), "--out", str(tmp_path / "o")]) == 2
    assert main(["mine", str(tmp_path / "g.csv"), "--out", str(tmp_path / "o"), "--accept", "0.2",
                 "--review", "0.5"]) == 2
    for share in ("-0.1", "0.5"):  # a share of unrelated pairs let through: 0 (off) up to 0.2
        assert main(["mine", str(tmp_path / "g.csv"), "--out", str(tmp_path / "o"), "--calibrate", share]) == 2
        assert "--calibrate" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_train_mixture_uses_only_usable_mined_rows(tmp_path) -> None:
    from humdex.training.chad import FragmentRecord, write_metadata
    from humdex.training.train import load_mixture
    from test_train import make_groups, write_chad

    write_chad(tmp_path / "hums", make_groups(5, seed=1, n_notes=10))
    mined, cache = tmp_path / "mined", tmp_path / "mined" / ".humdex_cache"
    cache.mkdir(parents=True)
    act = make_groups(1, seed=2, n_notes=10)[0].renditions[0].activation
    rows = []
    for fid in ("0", "1"):
        for vid, kind, status in (("o", "original", ""), ("a", "cover", "accepted"),
                                  ("u", "cover", "uncertain"), ("r", "cover", "rejected"),
                                  ("s", "cover", "same"), ("d", "cover", "different")):
            rows.append(FragmentRecord("c1", fid, vid, kind, (0.0, 1.0), split="train",
                                       is_available=status != "rejected", extra={"status": status}))
            np.save(cache / f"c1__{fid}__{vid}.npy", act)
    write_metadata(mined / "metadata.csv", rows)
    train, val = load_mixture([str(tmp_path / "hums"), str(mined)], None, None, "crepe",
                              ("original", "cover", "humming"))
    assert len(train) == 3 + 2 and len(val) == 2
    kinds = sorted(rd.kind for g in train[3:] for rd in g.renditions)
    assert kinds == ["cover"] * 4 + ["original"] * 2  # accepted and reviewed-same covers only
    no_covers, _ = load_mixture([str(tmp_path / "hums"), str(mined)], None, None, "crepe",
                                ("original", "humming"))
    assert len(no_covers) == 3  # mined fragments without their covers are not groups
    write_metadata(mined / "metadata.csv", [dataclasses.replace(r, split="validation") for r in rows])
    _, val = load_mixture([str(mined)], None, None, "crepe", ("original", "cover", "humming"))
    assert len(val) == 2 and len({g.melody_id for g in val}) == 2  # one melody, validated per fragment


def test_mine_hums_aligns_a_users_hums_to_their_songs(tmp_path) -> None:
    from humdex.training.data import load_chad_groups

    rng = np.random.default_rng(8)
    melody = random_melody(rng, 40)
    (tmp_path / "songs").mkdir()
    write_wav(tmp_path / "songs" / "tune.wav", sing(melody, seed=1))  # 120 bpm: 0.5 s a beat
    start_beat = sum(b for _, b in melody[:12])
    write_wav(tmp_path / "hum1.wav", sing(melody[12:26], tempo=0.8, transpose_st=-4, seed=4))
    (tmp_path / "queries.tsv").write_text("hum1.wav\ttune\nmissing.wav\ttune\n")
    out = tmp_path / "mined"
    assert main(["mine-hums", str(tmp_path / "queries.tsv"), "--songs", str(tmp_path / "songs"),
                 "--model", CQT_MODEL, "--out", str(out), "--accept", "0.7", "--quiet"]) == 0
    rows = read_metadata(out / "metadata.csv")
    (orig,) = [r for r in rows if r.audio_type == "original"]
    assert orig.extra["status"] == "accepted" and float(orig.extra["tempo_ratio"]) == pytest.approx(0.8, rel=0.1)
    assert orig.interval[0] == pytest.approx(start_beat * 0.5, abs=0.6)
    assert orig.interval[1] == pytest.approx((start_beat + sum(b for _, b in melody[12:26])) * 0.5, abs=0.8)
    (group,) = load_chad_groups(out, "train", progress=False, feature="cqt") + \
        load_chad_groups(out, "validation", progress=False, feature="cqt")
    assert [rd.kind for rd in group.renditions] == ["original", "hum"]


def test_mining_again_from_cached_features_gives_the_same_files(cover_groups, tmp_path) -> None:
    """A group mined again (a run killed before its meta file was written) reads its songs'
    features from the cache: the fragments and scores are those of the first run."""
    out = tmp_path / "mined"
    config = MineConfig(fragment_s=6.0, fragment_hop_s=6.0)

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
                if p.is_file() and ".cache" not in p.parts}

    mine(read_groups(cover_groups), CQT_MODEL, out, config, progress=False)
    first = files()
    assert any((out / ".cache").iterdir())
    for path in first:  # all but the feature cache
        (out / path).unlink()
    mine(read_groups(cover_groups), CQT_MODEL, out, config, progress=False)
    assert files() == first
