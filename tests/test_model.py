"""Encoder shapes and norms, checkpoint round trip with its config, errors, shipped weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humdex.errors import ModelError
from humdex.model import (
    DEFAULT_MODELS,
    Encoder,
    ModelConfig,
    default_model_path,
    embed,
    file_sha256,
    load_model,
    long_config,
    save_checkpoint,
)

# sha256 of the shipped weights (src/humdex/assets); update together with the files
SHIPPED_SHA256: dict[str, str] = {
    "short": "78ea37aafe060354c98874003b0e0b290da7d72a7fa99addd9cf8957f1475e6f",
    "long": "09076273633678f60c1614232d2350615988e41d78bf68385c82b652e7c8131c",
    "short16": "d2a11676771963b91ff29a9e09000fee3d208e86101598baa60d728738a1e008",
    "cqt": "9c5dd9f1241c4eb47d83c6b5ca567e0a738582d520f05e6601dc8d6183ad7687",
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
