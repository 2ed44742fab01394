"""What the environment may change, read in one place: every HUMDEX_* variable humdex honours.

    HUMDEX_THREADS        CPU threads for one pitch-tracker or encoder call (default: all cores,
                          at most 8; on a machine shared with busy processes 1 is often fastest)
    HUMDEX_INT8           "0": run calibrated models in float32 instead of int8 on the CPU
    HUMDEX_MODELS         models, comma separated: shipped names ("short,long" = M_fused; "cqt") or
                          .pt files a user trained (`humdex train --export`)
    HUMDEX_AUDIO_SONGS    audio songs fingerprinted from their "contour" (default) or "activation"
    HUMDEX_QUERY_INPUT    audio queries fingerprinted from their "contour" (default) or "crepe"
    HUMDEX_TOKEN          the token `humdex serve` asks of requests that add or remove songs
    HUMDEX_MILVUS_TOKEN   the token (user:password or an API key) of a Milvus server a catalog's
                          fingerprints live in (--store http://host:19530)
    HUMDEX_QUERY_SCALES   tempo scales a query is fingerprinted at, e.g. "1.0" or "0.8,1.0,1.25"
                          (default: by catalog, learned.search.query_scales_for)

The library reads them when it builds its defaults (learned.search.default_config, the trackers,
the encoder); the CLI and the server pass nothing else through the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from humdex.errors import HumdexError

AUDIO_SONG_INPUTS = ("contour", "activation")
QUERY_INPUTS = ("contour", "crepe")


@dataclass(frozen=True)
class Settings:
    threads: int
    int8: bool
    models: tuple[str, ...]
    audio_songs: str
    query_input: str
    query_scales: tuple[float, ...] | None
    token: str | None  # HUMDEX_TOKEN
    milvus_token: str | None  # HUMDEX_MILVUS_TOKEN
    cache_dir: Path  # humdex's own caches (compiled kernels): $XDG_CACHE_HOME/humdex or ~/.cache/humdex


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = environ.get(name, choices[0]).strip() or choices[0]
    if value not in choices:
        raise HumdexError(f"{name}={value!r}: choose one of {', '.join(choices)}")
    return value


def _scales(text: str | None) -> tuple[float, ...] | None:
    if not text or not text.strip():
        return None
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        scales = ()
    if not scales or not all(0.25 <= s <= 4.0 for s in scales):
        raise HumdexError(f"HUMDEX_QUERY_SCALES={text!r}: give tempo scales between 0.25 and 4, "
                          "comma separated (e.g. 0.8,1.0,1.25)")
    return scales


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings the environment asks for now (HumdexError for a value humdex cannot use)."""
    env = os.environ if environ is None else environ
    threads = env.get("HUMDEX_THREADS", "").strip()
    models = tuple(m.strip() for m in env.get("HUMDEX_MODELS", "short").split(",") if m.strip())
    return Settings(
        threads=int(threads) if threads.isdigit() and int(threads) > 0 else max(1, min(8, os.cpu_count() or 1)),
        int8=env.get("HUMDEX_INT8", "1").strip() != "0",
        models=models or ("short",),
        audio_songs=_choice(env, "HUMDEX_AUDIO_SONGS", AUDIO_SONG_INPUTS),
        query_input=_choice(env, "HUMDEX_QUERY_INPUT", QUERY_INPUTS),
        query_scales=_scales(env.get("HUMDEX_QUERY_SCALES")),
        token=env.get("HUMDEX_TOKEN", "").strip() or None,
        milvus_token=env.get("HUMDEX_MILVUS_TOKEN", "").strip() or None,
        cache_dir=Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "humdex",
    )


def configure_native_runtime() -> None:
    """Native-library settings for a humdex process, set before torch, numpy or faiss load
    (they read them once, at load), each only where the user has not chosen one:
    - OPENBLAS_NUM_THREADS=1: numpy's matrix products in a search are small (a query's
      fingerprints against one song's); spreading them over threads costs more than it saves;
    - OMP_WAIT_POLICY=PASSIVE: torch's and faiss's OpenMP workers sleep when idle instead of
      spinning, which on a busy two-core machine took the core the search itself needed
      (the two together halved the CPU of a cold default search there, BENCHMARKS.md);
    - TORCH_CPP_LOG_LEVEL=ERROR: torch's C++ deprecation warnings about the quantized tensors of
      the int8 encoder stay off the user's terminal."""
    for name, value in (("OPENBLAS_NUM_THREADS", "1"), ("OMP_WAIT_POLICY", "PASSIVE"),
                        ("TORCH_CPP_LOG_LEVEL", "ERROR")):
        os.environ.setdefault(name, value)
