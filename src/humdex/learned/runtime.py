"""An encoder as a search meets it: one handle per model, whose query fingerprints come from ONNX Runtime.

`import torch` alone takes 1.5 s, more than the rest of a cold `humdex search`. So each shipped
checkpoint is exported once to ONNX (float32, the model's own numbers) into
settings().cache_dir / "onnx", beside a card (JSON) holding what a search reads of the model: its
config (feature kind, window, hop, embedding size), the digest of its weights (it names the
catalog's fingerprint stores) and the facts its precision depends on (int8 calibration, torch's
int8 engine, VNNI). A later process reads the card and runs the ONNX file with ONNX Runtime,
neither importing torch nor unpickling the checkpoint.

Both files are named by the checkpoint file's sha256. The card is checked on reading (format,
checkpoint sha256, this CPU's flags), the ONNX file against the sha256 the card gives; anything
missing, unreadable or foreign is exported again, and both are written atomically (the ONNX file
first). Exporting imports torch and needs the onnx package; where it fails, the handle runs the
query through torch as before.

Songs are fingerprinted by torch (ModelHandle.encoder, learned.model.embed) at the handle's
precision: int8 on the CPU for a calibrated model. A query is fingerprinted at the same precision:
a calibrated model is also exported in int8 (the torch int8 module, learned.model.int8_encoder, as
a quantize/dequantize ONNX graph that ONNX Runtime runs with its int8 kernels: 0.4x the CPU of the
float32 graph, at cosine ~0.999 of torch int8 as float32 is; same hit rates, BENCHMARKS.md), and
the float32 graph serves HUMDEX_INT8=0.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from humdex.errors import ModelError
from humdex.files import atomic_write_bytes
from humdex.learned.model_config import ModelConfig
from humdex.learned.shipped import model_path
from humdex.machine import cpu_tag
from humdex.settings import settings

if TYPE_CHECKING:
    from humdex.learned.model import Encoder

CARD_FORMAT = 2  # bump when the card or the export changes meaning: older files are exported again
ONNX_OPSET = 17
BATCH = 64  # windows per ONNX Runtime call
_LOADING = threading.RLock()  # one thread at a time exports or loads a model (search.prewarm's and the search's)


@dataclass(frozen=True)
class ModelCard:
    """What a search needs of a checkpoint, read without torch (stored as JSON in the cache)."""

    checkpoint_sha256: str
    weights_sha256: str  # learned.model.weights_digest
    config: ModelConfig
    int8_calibrated: bool  # the checkpoint holds int8 activation ranges
    int8_engine: bool  # torch has its x86 quantized engine (learned.model.INT8_ENGINE)
    full_range_int8: bool  # learned.model.full_range_int8(): 8-bit activations (VNNI)
    cpu: str  # cpu_tag() of the machine that wrote it (the int8 facts are this CPU's)
    onnx_sha256: str
    onnx_int8_sha256: str = ""  # the int8 graph ("": none, the model is not calibrated)

    def to_json(self) -> str:
        d = {**self.__dict__, "config": self.config.to_dict(), "format": CARD_FORMAT}
        return json.dumps(d, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        d = json.loads(text)
        if d.pop("format", None) != CARD_FORMAT:
            raise ValueError("another card format")
        d["config"] = ModelConfig.from_dict(d["config"])
        return cls(**d)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_paths(checkpoint_sha256: str) -> tuple[Path, Path, Path]:
    """(card, float32 ONNX file, int8 ONNX file) of a checkpoint in the user's cache, named by the
    card format too: humdex versions that share a cache keep their own files instead of
    exporting again over each other's."""
    stem = settings().cache_dir / "onnx" / f"encoder-{checkpoint_sha256[:32]}-v{CARD_FORMAT}"
    return stem.with_suffix(".json"), stem.with_suffix(".onnx"), stem.with_suffix(".int8.onnx")


Graphs = tuple[bytes | None, bytes | None]  # (float32, int8) ONNX models


def _cached(checkpoint_sha256: str) -> tuple[ModelCard, Graphs] | None:
    """The card and ONNX graphs of a checkpoint as cached, or None where missing, bad or foreign."""
    card_path, onnx_path, int8_path = cache_paths(checkpoint_sha256)
    try:
        card = ModelCard.from_json(card_path.read_text())
        onnx = onnx_path.read_bytes()
        int8 = int8_path.read_bytes() if card.onnx_int8_sha256 else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    ok = (card.checkpoint_sha256 == checkpoint_sha256 and card.cpu == cpu_tag()
          and hashlib.sha256(onnx).hexdigest() == card.onnx_sha256
          and (int8 is None or hashlib.sha256(int8).hexdigest() == card.onnx_int8_sha256))
    return (card, (onnx, int8)) if ok else None


def to_onnx(encoder: Encoder, int8_full_range: bool | None = None) -> bytes:
    """The encoder as an ONNX model (batch-size free): input "windows" (n, n_bins, frames),
    output "fingerprints" (n, embedding_dim). float32, or with `int8_full_range` given its torch
    int8 module (learned.model.int8_encoder; 8- or 7-bit activations) as quantize/dequantize
    nodes around float operators, which ONNX Runtime fuses into int8 kernels. Needs torch and
    the onnx package."""
    import warnings

    import torch

    module: Any = encoder.eval()
    if int8_full_range is not None:
        from humdex.learned.model import int8_encoder

        assert encoder.int8_calibration is not None
        module = int8_encoder(encoder, encoder.int8_calibration, int8_full_range)
    cfg = encoder.config
    example = torch.zeros(2, cfg.n_bins, cfg.window.feature_frames)
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript-based exporter announces its deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=ONNX_OPSET,  # type: ignore[arg-type]
                          input_names=["windows"], output_names=["fingerprints"],
                          dynamic_axes={"windows": {0: "n"}, "fingerprints": {0: "n"}})
    return buf.getvalue()


def export(checkpoint: str, mtime_ns: int, checkpoint_sha256: str) -> tuple[ModelCard, Graphs]:
    """Card and ONNX graphs of a checkpoint, made now with torch and kept in the cache (not the
    ONNX files where the export fails: the search then runs torch, and a later process retries)."""
    import torch

    from humdex.learned import model as torch_model

    encoder = torch_model._load_cached(checkpoint, mtime_ns)
    int8_engine = torch_model.INT8_ENGINE in torch.backends.quantized.supported_engines
    full_range = torch_model.full_range_int8()
    onnx: bytes | None = None
    int8: bytes | None = None
    try:
        onnx = to_onnx(encoder)
        if encoder.int8_calibration is not None and int8_engine:
            int8 = to_onnx(encoder, full_range)
    except Exception:  # noqa: BLE001, S110  (no onnx package, an exporter that cannot: torch
        pass  # runs the query, or the float32 graph does where only the int8 export failed)
    card = ModelCard(
        checkpoint_sha256=checkpoint_sha256,
        weights_sha256=torch_model.weights_digest(encoder),
        config=encoder.config,
        int8_calibrated=encoder.int8_calibration is not None,
        int8_engine=int8_engine,
        full_range_int8=full_range,
        cpu=cpu_tag(),
        onnx_sha256=hashlib.sha256(onnx).hexdigest() if onnx is not None else "",
        onnx_int8_sha256=hashlib.sha256(int8).hexdigest() if int8 is not None else "",
    )
    if onnx is not None:
        card_path, onnx_path, int8_path = cache_paths(checkpoint_sha256)
        try:  # the graphs first, the card that vouches for them last
            atomic_write_bytes(onnx_path, onnx)
            if int8 is not None:
                atomic_write_bytes(int8_path, int8)
            atomic_write_bytes(card_path, card.to_json().encode())
        except OSError:  # a read-only cache: exported again next time
            pass
    return card, (onnx, int8)


@functools.lru_cache(maxsize=8)
def _card(checkpoint: str, mtime_ns: int) -> tuple[ModelCard, Graphs]:
    sha = file_sha256(checkpoint)
    return _cached(sha) or export(checkpoint, mtime_ns, sha)


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """An encoder (shipped, or a user's .pt file) loaded once per process, with what the learned search reads of it: its
    name, file, card (the digest of its weights, which names the catalog's fingerprint stores so
    that a change of the file's metadata alone keeps them; its config: feature kind, window,
    hop) and the precision it runs at. Queries are fingerprinted by ONNX Runtime (embed_query)
    at that precision; the torch encoder, which fingerprints songs, loads on first use."""

    name: str
    path: Path
    mtime_ns: int
    card: ModelCard
    onnx: bytes | None = None  # the exported model (None: queries run through torch)
    onnx_int8: bytes | None = None  # its int8 graph (None: int8 queries run through torch)

    @property
    def weights_sha256(self) -> str:
        return self.card.weights_sha256

    @property
    def config(self) -> ModelConfig:
        return self.card.config

    @property
    def feature(self) -> str:
        return self.card.config.feature

    @property
    def precision(self) -> str:
        """learned.model.precision of the encoder (a PRECISIONS key), from the card: read when
        asked, as HUMDEX_INT8 may change between searches."""
        if not (self.card.int8_calibrated and self.card.int8_engine and settings().int8):
            return "float32"
        return "int8" if self.card.full_range_int8 else "int8-7bit"

    def song_hop_s(self, min_song_hop_s: float) -> float:
        """The hop catalog songs are fingerprinted at: the model's, at least min_song_hop_s."""
        return max(self.config.hop_s, min_song_hop_s)

    @functools.cached_property
    def encoder(self) -> Encoder:
        """The torch encoder (imports torch): what fingerprints songs; ModelError when the file
        no longer holds the weights or precision of the card."""
        from humdex.learned import model as torch_model

        encoder = torch_model._load_cached(str(self.path), self.mtime_ns)
        if torch_model.weights_digest(encoder) != self.weights_sha256 \
                or torch_model.precision(encoder) != self.precision:
            raise ModelError(f"{self.path} changed while in use, or its cached card "
                             f"{cache_paths(self.card.checkpoint_sha256)[0]} is stale: delete that file")
        return encoder

    @property
    def session(self) -> Any:  # onnxruntime.InferenceSession (untyped), or None without ONNX
        """The ONNX Runtime session that fingerprints queries: the int8 graph at an int8
        self.precision, else (or where the int8 export failed) the float32 one; made on first
        use (one per graph and handle). None without an export: queries run through torch."""
        graph, slot = (self.onnx_int8, "_session_int8") \
            if self.precision != "float32" and self.onnx_int8 is not None else (self.onnx, "_session")
        if graph is None:
            return None
        with _LOADING:
            if slot not in self.__dict__:
                object.__setattr__(self, slot, ort_session(graph))
            return self.__dict__[slot]

    def embed_query(self, windows: np.ndarray) -> np.ndarray:
        """(n, n_bins, frames) model inputs -> (n, embedding_dim) float32 L2-normalised
        fingerprints at self.precision: by ONNX Runtime, or torch without the export."""
        session = self.session
        if session is None:
            from humdex.learned.model import embed

            return embed(self.encoder, windows)
        x = np.ascontiguousarray(windows, dtype=np.float32)
        out = [session.run(None, {"windows": x[i:i + BATCH]})[0] for i in range(0, len(x), BATCH)]
        if not out:
            return np.zeros((0, self.config.embedding_dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def ort_session(onnx: bytes) -> Any:
    """An ONNX Runtime session of an ONNX model on the CPU: settings().threads threads whose idle
    workers sleep instead of spinning (as torch's under OMP_WAIT_POLICY=PASSIVE)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings().threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=8)
def _handle(name: str, path: str, mtime_ns: int) -> ModelHandle:
    card, (onnx, int8) = _card(path, mtime_ns)
    return ModelHandle(name, Path(path), mtime_ns, card, onnx, int8)


def model_handle(name: str = "short") -> ModelHandle:
    """The model `name` (a shipped name, or a .pt file: shipped.model_path), loaded once per
    process (again only when its file changes): from its cached card and ONNX file, or exported
    now (export); ModelError for an unknown name or a missing or corrupt file. A file's handle is
    named by its stem (its stores by stem and weights digest)."""
    p = model_path(name)
    if not p.is_file():
        raise ModelError(f"model checkpoint not found: {p}")
    with _LOADING:
        return _handle(p.stem if name.endswith(".pt") else name, str(p.resolve()), p.stat().st_mtime_ns)
