"""The encoders shipped inside the package, by name, or a user's own (importable without torch)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from humdex.errors import ModelError

DEFAULT_MODELS = {"short": "encoder_crepe_short.pt", "long": "encoder_crepe_long.pt",
                  "short16": "encoder_crepe_short16.pt", "cqt": "encoder_cqt_short.pt"}


def default_model_path(name: str = "short") -> Path:
    """Path of a shipped model ("short" = M_short, "long" = M_long) inside the package."""
    if name not in DEFAULT_MODELS:
        raise ModelError(f"unknown default model {name!r}; choose from {sorted(DEFAULT_MODELS)}")
    return Path(str(resources.files("humdex") / "assets" / DEFAULT_MODELS[name]))


def model_path(name: str) -> Path:
    """The file of model `name`: a shipped name (DEFAULT_MODELS), or a path to a .pt file (a model
    trained with `humdex train --export`); ModelError for an unknown name or a missing file."""
    if not name.endswith(".pt"):
        return default_model_path(name)
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return path
