"""learned.runtime: queries fingerprinted by ONNX Runtime without torch, from a digest-checked export
cache; the numpy query features against the torch ones the trainer uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from humdex.frontend.contour import Contour, stretch_frames
from humdex.learned import features as F
from humdex.learned import runtime
from humdex.learned.model import Encoder, ModelConfig, embed, precision, save_checkpoint
from humdex.learned.shipped import default_model_path


def _walk(rng: np.random.Generator, n: int = 1500) -> np.ndarray:
    """(n,) float32 MIDI at 10 ms: notes of 0.1-0.5 s on a random walk, with rests (NaN) between."""
    out, pitch = [], 62.0
    while len(out) < n:
        pitch = float(np.clip(pitch + rng.integers(-4, 5), 48, 80))
        out += [pitch + rng.normal(0, 0.2)] * int(rng.integers(10, 50)) + [np.nan] * int(rng.integers(0, 8))
    return np.array(out[:n], np.float32)


def _query_windows(rng: np.random.Generator, spec: F.WindowSpec = F.M_SHORT) -> np.ndarray:
    """Model inputs of a melody at the tempo scales a query is fingerprinted at."""
    act = F.contour_to_activation(Contour(_walk(rng), 0.01))
    return np.concatenate([F.crepe_windows(stretch_frames(act, s), spec)[0] for s in (0.5, 0.8, 1.0, 1.6, 2.0)])


def test_numpy_query_features_equal_the_torch_ones_the_trainer_uses() -> None:
    rng = np.random.default_rng(3)
    midi = _walk(rng)
    midi[::7] += rng.uniform(-0.5, 0.5, size=len(midi[::7])).astype(np.float32)  # off the bin grid
    act = F.pseudo_activation_np(midi)
    want = F.pseudo_activation(torch.from_numpy(midi.astype(np.float64))).numpy()
    np.testing.assert_allclose(act, want, rtol=0, atol=1e-7)
    assert act.dtype == np.float32 and np.all(act[np.isnan(midi)] == 0) and act.max() > 0.99
    for scale in (0.5, 1.0, 1.7):
        frames = stretch_frames(act, scale)
        pooled = F.pooled_windows(frames, F.M_SHORT.starts(len(frames)), F.M_SHORT.feature_frames)
        pooled[1] *= 0.1  # a quiet window: the crop falls back to every frame's peak
        pooled[2] = 0.0  # a silent one
        got = F.crop_windows_np(pooled)
        ref = F.crop_windows(torch.from_numpy(pooled)).numpy()
        assert got.shape == ref.shape == (len(pooled), F.FEATURE_BINS, F.M_SHORT.feature_frames)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    cqt = rng.random((900, F.CQT_BINS), dtype=np.float32)
    got, starts_s = F.cqt_windows(cqt, F.M_SHORT)
    starts = F.M_SHORT.starts(len(cqt))
    ref = F.gather_pooled(torch.from_numpy(cqt), starts, F.M_SHORT.feature_frames).transpose(1, 2).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(starts_s, starts * F.CREPE_HOP_S)


@pytest.mark.skipif(not default_model_path("short").is_file(), reason="no shipped model")
def test_onnx_fingerprints_of_the_shipped_model_stay_near_torch_int8_and_equal_torch_float(monkeypatch) -> None:
    """At int8 (the CPU default for a calibrated model) the query runs the int8 graph, near torch
    int8 (how the catalog's songs are fingerprinted); at HUMDEX_INT8=0 the float32 graph, equal
    to torch float32."""
    monkeypatch.setenv("HUMDEX_INT8", "1")
    handle = runtime.model_handle("short")
    assert handle.session is not None and handle.onnx_int8 is not None  # exported (or cached)
    x = _query_windows(np.random.default_rng(5))
    got = handle.embed_query(x)
    int8 = embed(handle.encoder, x)
    cos = (got * int8).sum(1)
    assert handle.precision.startswith("int8") and got.shape == (len(x), 128) and got.dtype == np.float32
    assert cos.min() > 0.99 and cos.mean() > 0.998
    assert handle.embed_query(x[:0]).shape == (0, 128)
    card = handle.card
    assert card.config == handle.encoder.config and card.weights_sha256 == handle.weights_sha256
    monkeypatch.setenv("HUMDEX_INT8", "0")
    assert handle.precision == precision(handle.encoder) == "float32"
    with torch.inference_mode():
        want = handle.encoder(torch.from_numpy(x)).numpy()  # float32 torch
    assert np.abs(handle.embed_query(x) - want).max() < 1e-4


def _tiny_checkpoint(path: Path, calibrated: bool = False) -> Path:
    torch.manual_seed(0)
    model = Encoder(ModelConfig(base_channels=4))
    if calibrated:
        from humdex.learned.model import calibrate_int8

        model.int8_calibration = calibrate_int8(model, _query_windows(np.random.default_rng(1))[::4])
    save_checkpoint(path, model, half=False)
    return path


def _fresh_handle(path: Path) -> runtime.ModelHandle:
    runtime._card.cache_clear()  # as a new process: nothing loaded yet
    runtime._handle.cache_clear()
    return runtime.model_handle(str(path))


def test_the_export_is_cached_once_checked_and_a_bad_or_foreign_file_is_made_again(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt")
    x = np.random.default_rng(2).random((5, 80, 75), dtype=np.float32)
    first = _fresh_handle(ckpt)
    want = first.embed_query(x)
    card_path, onnx_path, int8_path = runtime.cache_paths(runtime.file_sha256(ckpt))
    assert card_path.is_file() and onnx_path.is_file() and not int8_path.exists()  # not calibrated
    assert json.loads(card_path.read_text())["config"]["base_channels"] == 4
    exports = []
    real_export = runtime.export
    monkeypatch.setattr(runtime, "export", lambda *a: exports.append(a) or real_export(*a))

    again = _fresh_handle(ckpt)  # read from the cache: no export, no torch model loaded
    assert exports == [] and "encoder" not in again.__dict__
    assert again.card == first.card and np.array_equal(again.embed_query(x), want)

    onnx_path.write_bytes(onnx_path.read_bytes()[:1000])  # truncated
    assert np.array_equal(_fresh_handle(ckpt).embed_query(x), want) and len(exports) == 1
    assert runtime._cached(runtime.file_sha256(ckpt)) is not None  # written again, whole

    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "cpu": "another-machine"}))  # int8 facts of another CPU
    _fresh_handle(ckpt)
    assert len(exports) == 2
    card_path.write_text("{not json")
    _fresh_handle(ckpt)
    assert len(exports) == 3

    sha = runtime.file_sha256(ckpt)  # another humdex (card format) sharing the cache: its own files
    monkeypatch.setattr(runtime, "CARD_FORMAT", runtime.CARD_FORMAT + 1)
    assert set(runtime.cache_paths(sha)).isdisjoint([card_path, onnx_path, int8_path])
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "export", lambda *a: exports.append(a) or real_export(*a))

    torch.manual_seed(1)  # another model in the same file: another digest, another cache entry
    save_checkpoint(ckpt, Encoder(ModelConfig(base_channels=4)))
    other = _fresh_handle(ckpt)
    assert len(exports) == 4 and other.weights_sha256 != first.weights_sha256
    assert not np.allclose(other.embed_query(x), want)


def test_a_calibrated_model_is_exported_in_int8_too_and_a_bad_int8_file_is_a_miss(
        tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HUMDEX_INT8", "1")
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt", calibrated=True)
    x = _query_windows(np.random.default_rng(2))[:40]
    handle = _fresh_handle(ckpt)
    assert handle.precision.startswith("int8") and handle.onnx_int8 is not None
    got = handle.embed_query(x)
    with torch.inference_mode():  # the int8 graph ran, not the float32 one (the shipped model's
        want = handle.encoder(torch.from_numpy(x)).numpy()  # test compares it with torch int8)
    assert (got * want).sum(1).min() > 0.95 and not np.allclose(got, want, atol=1e-5)
    sha = runtime.file_sha256(ckpt)
    assert np.array_equal(_fresh_handle(ckpt).embed_query(x), got)  # read back from the cache
    int8_path = runtime.cache_paths(sha)[2]
    whole = int8_path.read_bytes()
    int8_path.write_bytes(whole[:500])  # truncated: a miss (exported again, as the float32 file
    assert runtime._cached(sha) is None  # in the test above)
    int8_path.write_bytes(whole)
    monkeypatch.setenv("HUMDEX_INT8", "0")
    assert np.abs(handle.embed_query(x) - want).max() < 1e-4  # the float32 graph


def test_without_an_export_the_query_runs_through_torch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt")

    def no_onnx(encoder):
        raise ModuleNotFoundError("onnx")

    monkeypatch.setattr(runtime, "to_onnx", no_onnx)
    handle = _fresh_handle(ckpt)
    assert handle.session is None and not runtime.cache_paths(runtime.file_sha256(ckpt))[0].exists()
    x = np.random.default_rng(2).random((3, 80, 75), dtype=np.float32)
    assert np.array_equal(handle.embed_query(x), embed(handle.encoder, x))


@pytest.mark.skipif(not default_model_path("short").is_file(), reason="no shipped model")
def test_a_default_search_in_a_new_process_imports_no_torch_and_ranks_as_the_torch_query(
        tmp_path, song_dir, melodies) -> None:
    """The default search (hybrid) of a fresh `humdex search` process never imports torch once
    the model's export is cached (indexing made it), nor numba (the DTW kernel is C); it ranks as
    the query fingerprinted by torch in int8 did before: the same top 10, the same top 3 in
    order, scores within 0.01 (float32 against int8 query fingerprints: songs far down the list, at near-equal scores, may swap)."""
    import soundfile as sf

    from conftest import sing
    from humdex.frontend.audio import SAMPLE_RATE

    db = tmp_path / "db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-m", "humdex", "index", str(song_dir), "--db", str(db)],
                   check=True, capture_output=True, env=env)
    queries = []
    for i in (2, 7):
        audio = sing(melodies[i], transpose_st=3.0, tempo=1.1, seed=i)
        queries.append(tmp_path / f"q{i}.wav")
        sf.write(queries[-1], audio[2 * SAMPLE_RATE:12 * SAMPLE_RATE], SAMPLE_RATE)
    code = ("import json, sys\n"
            "from humdex.catalog.catalog import Catalog\n"
            "from humdex.search import load_query, search\n"
            "from humdex.learned import runtime\n"
            "if sys.argv[1] == 'torch':\n"
            "    runtime.ModelHandle.session = property(lambda self: None)  # the query through torch\n"
            "out = [[(h.song_id, h.score) for h in search(load_query(q), Catalog.open(sys.argv[2])).hits]\n"
            "       for q in sys.argv[3:]]\n"
            "print(json.dumps({'ranked': out, 'torch': 'torch' in sys.modules,\n"
            "                  'numba': 'numba' in sys.modules}))\n")
    runs = {}
    for how in ("onnx", "torch"):
        done = subprocess.run([sys.executable, "-c", code, how, str(db), *map(str, queries)],
                              check=True, capture_output=True, text=True, env=env)
        runs[how] = json.loads(done.stdout)
    assert runs["onnx"]["torch"] is False and runs["torch"]["torch"] is True
    assert runs["onnx"]["numba"] is False  # the DTW kernel is the C one (classical.native)
    for onnx, torch_run in zip(runs["onnx"]["ranked"], runs["torch"]["ranked"]):
        assert len(onnx) == 10 and {s for s, _ in onnx} == {s for s, _ in torch_run}
        assert [s for s, _ in onnx[:3]] == [s for s, _ in torch_run[:3]]
        scores = dict(torch_run)
        assert max(abs(score - scores[s]) for s, score in onnx) < 0.01
    assert [r[0][0] for r in runs["onnx"]["ranked"]] == ["song02", "song07"]
    cli = subprocess.run([sys.executable, "-X", "importtime", "-m", "humdex", "search", str(queries[0]),
                          "--db", str(db), "--json"], check=True, capture_output=True, text=True, env=env)
    assert json.loads(cli.stdout)["results"][0]["song_id"] == "song02"
    imported = {line.split("|")[-1].strip() for line in cli.stderr.splitlines() if "|" in line}
    assert "onnxruntime" in imported and not {m for m in imported if m.split(".")[0] == "torch"}
