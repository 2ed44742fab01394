"""What an encoder is, without torch: its config (stored inside every checkpoint) and its precisions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from humdex.learned.features import M_LONG, M_SHORT, WindowSpec

# how song fingerprints made in each precision are told apart on disk (learned.search.store_folder)
PRECISIONS = {"int8": "", "int8-7bit": "-i8r", "float32": "-f32"}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an encoder and feed it; stored inside every checkpoint."""

    feature: str = "crepe"  # "crepe" (80 bins) or "cqt" (84 bins)
    n_bins: int = 80
    window_s: float = M_SHORT.window_s
    hop_s: float = M_SHORT.hop_s
    base_channels: int = 32  # ResNet18 uses 64; 16-32 train on a CPU
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    embedding_dim: int = 128

    @property
    def window(self) -> WindowSpec:
        return WindowSpec(self.window_s, self.hop_s)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "blocks" in d:
            d["blocks"] = tuple(d["blocks"])
        return cls(**d)


def short_config(**kw) -> ModelConfig:
    return ModelConfig(window_s=M_SHORT.window_s, hop_s=M_SHORT.hop_s, **kw)


def long_config(**kw) -> ModelConfig:
    return ModelConfig(window_s=M_LONG.window_s, hop_s=M_LONG.hop_s, **kw)
