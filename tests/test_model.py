"""Encoder shapes and norms, checkpoint round trip with its config, errors, shipped weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humdex.errors import ModelError
from humdex.frontend.contour import Contour
from humdex.learned.features import feature_windows
from humdex.learned.fingerprints import contour_frames
from humdex.learned.model import (
    DEFAULT_MODELS,
    Encoder,
    ModelConfig,
    calibrate_int8,
    default_model_path,
    embed,
    file_sha256,
    inference_module,
    int8_encoder,
    load_model,
    long_config,
    precision,
    save_checkpoint,
)

# sha256 of the shipped weights (src/humdex/assets); update together with the files
SHIPPED_SHA256: dict[str, str] = {
    "short": "2413674c583a13501d4c10e0f3454d76336de97ea2fd5de75895f450719bd9ff",
    "long": "5317c8205795b3fa579160a94f48d148c62e8f161909ec2020db708c9776a1ea",
    "short16": "a0343fefbe5cbe82d364893410ef999b4dfcab723a030a6f5e46551545b1ae15",
    "cqt": "0d74911600a819d491b8931ce09a19ff39a19ca760ea4d3ee2b7949ba5a50439",
}


def test_encoder_output_is_unit_128d() -> None:
    model = Encoder(ModelConfig(base_channels=4))
    z = model(torch.rand(3, 80, 75))
    assert z.shape == (3, 128)
    assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    long = Encoder(long_config(base_channels=4))
    assert long(torch.rand(2, 80, 200)).shape == (2, 128)
    cqt = Encoder(ModelConfig(feature="cqt", n_bins=84, base_channels=4))
    assert cqt(torch.rand(2, 84, 75)).shape == (2, 128)


def test_embed_batches_and_handles_empty() -> None:
    model = Encoder(ModelConfig(base_channels=4))
    x = np.random.default_rng(0).random((5, 80, 75), dtype=np.float32)
    z = embed(model, x, batch_size=2)
    assert z.shape == (5, 128) and z.dtype == np.float32
    assert np.allclose(z, embed(model, x, batch_size=8), atol=1e-5)
    assert embed(model, x[:0]).shape == (0, 128)


def test_checkpoint_round_trip_rebuilds_from_stored_config(tmp_path) -> None:
    cfg = long_config(base_channels=6, embedding_dim=128)
    model = Encoder(cfg).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, half=False, step=7)
    loaded = load_model(path)
    assert loaded.config == cfg
    x = torch.rand(2, 80, 200)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x), atol=1e-5)
    save_checkpoint(tmp_path / "h.pt", model, half=True)
    with torch.no_grad():
        assert torch.allclose(model(x), load_model(tmp_path / "h.pt")(x), atol=2e-2)
    assert not (tmp_path / "m.pt.tmp").exists()


def test_bad_checkpoints_raise_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="corrupt"):
        load_model(tmp_path / "junk.pt")
    torch.save({"model": {}, "config": ModelConfig(base_channels=4).__dict__}, tmp_path / "e.pt")
    with pytest.raises(ModelError, match="does not match"):
        load_model(tmp_path / "e.pt")
    with pytest.raises(ModelError, match="unknown default"):
        default_model_path("medium")


@pytest.mark.parametrize("name", sorted(DEFAULT_MODELS))
def test_shipped_weights_are_pinned_small_and_load(name: str) -> None:
    path = default_model_path(name)
    if name not in SHIPPED_SHA256:
        pytest.skip(f"no shipped {name} model yet")
    assert path.stat().st_size < 50e6
    assert file_sha256(path) == SHIPPED_SHA256[name]
    model = load_model(name=name)
    z = embed(model, np.zeros((1, model.config.n_bins, model.config.window.feature_frames), np.float32))
    assert np.isclose(np.linalg.norm(z), 1.0, atol=1e-4)
    assert model.int8_calibration is not None  # scripts/calibrate_int8.py
    notes = np.repeat(np.array([60, 62, 64, 65, 67, 65, 64, 62, 60, 67, 72, 67], np.float32), 40)
    frames = contour_frames(Contour(np.concatenate([notes, notes]), 0.01), model.config.feature)
    x = feature_windows(frames, model.config.window, model.config.feature)[0]  # a melody, as queries are
    with torch.inference_mode():
        cos = (model(torch.as_tensor(x)) * int8_encoder(model, model.int8_calibration)(torch.as_tensor(x))).sum(1)
    assert float(cos.min()) > 0.98


def _calibrated(base: int = 8) -> tuple[Encoder, np.ndarray]:
    torch.manual_seed(0)
    model = Encoder(ModelConfig(base_channels=base)).eval()
    x = np.random.default_rng(1).random((48, 80, 75), dtype=np.float32)
    model.int8_calibration = calibrate_int8(model, x[:32])
    return model, x


def test_int8_encoder_follows_the_float_model_and_survives_a_checkpoint(tmp_path, monkeypatch) -> None:
    model, x = _calibrated()
    monkeypatch.setenv("HUMDEX_INT8", "1")
    assert precision(model).startswith("int8") and inference_module(model) is not model
    z8 = embed(model, x[32:])
    with torch.inference_mode():
        z = model(torch.as_tensor(x[32:])).numpy()
    assert np.allclose(np.linalg.norm(z8, axis=1), 1.0, atol=1e-4)
    cos = np.sum(z8 * z, axis=1)
    assert cos.min() > 0.97 and not np.array_equal(z8, z)  # int8: close, not the same numbers
    assert np.array_equal(embed(model, x[32:], batch_size=5), z8)  # static ranges: batch-independent
    save_checkpoint(tmp_path / "q.pt", model, half=False)
    loaded = load_model(tmp_path / "q.pt")
    assert loaded.int8_calibration is not None
    assert np.array_equal(embed(loaded, x[32:]), z8)


def test_int8_switch_and_uncalibrated_models_run_in_float(monkeypatch) -> None:
    model, x = _calibrated()
    monkeypatch.setenv("HUMDEX_INT8", "0")
    assert precision(model) == "float32" and inference_module(model) is model
    with torch.inference_mode():
        assert np.allclose(embed(model, x), model(torch.as_tensor(x)).numpy(), atol=1e-6)
    monkeypatch.setenv("HUMDEX_INT8", "1")
    assert precision(Encoder(ModelConfig(base_channels=8))) == "float32"


def test_8_bit_activations_are_closer_to_float_than_7_bit() -> None:
    model, x = _calibrated()
    xt = torch.as_tensor(x[32:])
    with torch.inference_mode():
        z = model(xt)
        err = {full: float((1 - (int8_encoder(model, model.int8_calibration, full)(xt) * z).sum(1)).mean())
               for full in (True, False)}
    assert 0 < err[True] < err[False] < 0.03


def test_int8_calibration_of_another_model_is_a_model_error() -> None:
    model, _ = _calibrated()
    other = Encoder(ModelConfig(base_channels=8, blocks=(1, 1, 1, 1)))
    with pytest.raises(ModelError, match="int8 calibration"):
        int8_encoder(other, model.int8_calibration)


def test_int8_module_is_saved_once_and_a_bad_saved_file_is_rebuilt(tmp_path, monkeypatch) -> None:
    from humdex.learned import model as model_module

    monkeypatch.setenv("HUMDEX_INT8", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model, x = _calibrated()
    full = model_module.full_range_int8()
    xt = torch.as_tensor(x[32:])
    with torch.inference_mode():
        built = int8_encoder(model, model.int8_calibration, full)(xt)
    model_module._int8_of.cache_clear()
    first = model_module._int8_of(model, full)  # builds and saves
    saved = list((tmp_path / "humdex" / "int8").glob("encoder-*.pt"))
    assert len(saved) == 1
    model_module._int8_of.cache_clear()
    calls = []
    monkeypatch.setattr(model_module, "int8_encoder", lambda *a: calls.append(a))  # must not be needed
    again = model_module._int8_of(model, full)  # a new process: loaded from the file
    assert calls == [] and again is not first
    with torch.inference_mode():
        assert torch.equal(again(xt), built) and torch.equal(first(xt), built)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for bad in (b"not a torchscript file", None):
        if bad is None:  # a valid module saved for another model's digest
            other, _ = _calibrated(base=4)
            model_module._int8_of.cache_clear()
            model_module._int8_of(other, full)
            other_file = next(p for p in (tmp_path / "humdex" / "int8").glob("encoder-*.pt") if p != saved[0])
            saved[0].write_bytes(other_file.read_bytes())
        else:
            saved[0].write_bytes(bad)
        model_module._int8_of.cache_clear()
        rebuilt = model_module._int8_of(model, full)
        with torch.inference_mode():
            assert torch.equal(rebuilt(xt), built)
    model_module._int8_of.cache_clear()


RECIPE_PARSE = '''
import argparse, json, runpy, shlex, sys
class Parsed(Exception):
    pass
real = argparse.ArgumentParser.parse_args
def parse_then_stop(self, args=None, namespace=None):
    raise Parsed(real(self, args, namespace))
argparse.ArgumentParser.parse_args = parse_then_stop
results = []
for command in json.loads(sys.argv[1]):
    argv = shlex.split(command)
    argv = argv[1:] if argv[0].startswith("python") else argv
    sys.argv = argv
    try:
        if argv[0] == "humdex":
            from humdex.cli import main
            main(argv[1:])
        else:
            runpy.run_path(argv[0], run_name="__main__")
        results.append("no parser")
    except Parsed:
        results.append("ok")
    except SystemExit as e:
        results.append(f"exit {e.code}")
print(json.dumps(results))
'''


def test_shipped_checkpoints_carry_recipes_that_parse_at_head() -> None:
    """Each shipped model names the commands that made it; those marked HEAD must still be
    accepted, flag for flag, by today's scripts and CLI (the step at an older commit names it)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    head_steps = []
    for name in sorted(DEFAULT_MODELS):
        ckpt = torch.load(default_model_path(name), map_location="cpu", weights_only=True)
        steps = ckpt["train_config"]["recipe_steps"]
        assert steps and steps[-1]["command"].startswith("python scripts/calibrate_int8.py")
        for step in steps:
            assert step["commit"] == "HEAD" or len(step["commit"]) >= 7, step
        head_steps += [s["command"] for s in steps if s["commit"] == "HEAD"]
    out = subprocess.run([sys.executable, "-c", RECIPE_PARSE, json.dumps(head_steps)], cwd=root,
                         capture_output=True, text=True, check=True)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert results == ["ok"] * len(head_steps), list(zip(head_steps, results))
