"""Fingerprint encoder: ResNet18-style CNN over (bins x frames) windows -> L2-normalised 128-d vectors."""

from __future__ import annotations

import functools
import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humdex.errors import ModelError
from humdex.files import atomic_write
from humdex.learned.model_config import (  # noqa: F401  (re-exported)
    PRECISIONS,
    ModelConfig,
    long_config,
    short_config,
)
from humdex.learned.runtime import ModelHandle, file_sha256, model_handle  # noqa: F401  (re-exported)
from humdex.learned.shipped import DEFAULT_MODELS, default_model_path, model_path  # noqa: F401  (re-exported)
from humdex.settings import settings


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class Encoder(nn.Module):
    """(batch, n_bins, frames) windows -> (batch, embedding_dim) unit vectors.

    ResNet18 layout (stem conv 7x7/2 + max-pool, four stages of basic blocks [2, 2, 2, 2] with
    widths base x (1, 2, 4, 8), strides 1, 2, 2, 2), global average pooling, a linear
    projection and L2 normalisation. The input is one channel: the feature image.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config.base_channels
        self.stem = nn.Sequential(nn.Conv2d(1, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, c_in = [], c
        for i, n in enumerate(config.blocks):
            c_out = c * 2**i
            for j in range(n):
                stages.append(BasicBlock(c_in, c_out, 2 if (i > 0 and j == 0) else 1))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c_in, config.embedding_dim)
        # activation observers' state from calibrate_int8, kept in checkpoints (None: float only)
        self.int8_calibration: dict[str, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stages(self.stem(x[:, None]))
        y = self.head(y.mean(dim=(2, 3)))
        return nn.functional.normalize(y.float(), dim=1)


INT8_ENGINE = "x86"  # torch's quantized CPU engine (fbgemm/oneDNN kernels)


def int8_enabled() -> bool:
    """Whether CPU inference may run calibrated models in int8: $HUMDEX_INT8 != "0" and torch
    has the x86 quantized engine."""
    return settings().int8 and INT8_ENGINE in torch.backends.quantized.supported_engines


def full_range_int8() -> bool:
    """Whether activations may use all 8 bits: a CPU with VNNI accumulates u8 x s8 products in
    int32. Without it fbgemm's AVX2 kernels sum pairs in int16, which can saturate, so activations
    get 7 bits (torch's x86 default): 3.5x the error (1 - cosine), BENCHMARKS.md."""
    probe = getattr(torch.cpu, "_is_vnni_supported", None)
    return bool(probe()) if probe is not None else False


def _prepared_int8(model: Encoder, full_range: bool) -> torch.fx.GraphModule:
    """A float copy of `model` with int8 observers inserted (torch.ao FX post-training quantization);
    the observers' state does not depend on full_range, only the ranges convert derives from it."""
    import copy

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    torch.backends.quantized.engine = INT8_ENGINE
    mapping = get_default_qconfig_mapping("onednn" if full_range else "x86")  # reduce_range False / True
    example = (torch.zeros(1, model.config.n_bins, model.config.window.feature_frames),)
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return prepare_fx(copy.deepcopy(model).cpu().eval(), mapping, example)


def calibrate_int8(model: Encoder, windows: np.ndarray, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """The activation observers' state after running (n, n_bins, frames) typical model inputs
    through `model` (what int8_encoder needs besides the weights; store it in the checkpoint)."""
    prepared = _prepared_int8(model, full_range=True)
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            prepared(torch.as_tensor(windows[i:i + batch_size]))
    return {k: v.clone() for k, v in prepared.state_dict().items() if "activation_post_process" in k}


def int8_encoder(model: Encoder, calibration: dict[str, torch.Tensor], full_range: bool | None = None) -> nn.Module:
    """`model` quantized to int8 (static, per-channel weights) with the calibrated activation
    ranges (8-bit activations when full_range, default full_range_int8(), else 7-bit): ~4x
    faster than float on one CPU core, outputs at ~0.999 cosine of the float ones (BENCHMARKS.md)."""
    from torch.ao.quantization.quantize_fx import convert_fx

    prepared = _prepared_int8(model, full_range_int8() if full_range is None else full_range)
    wanted = {k for k in prepared.state_dict() if "activation_post_process" in k}
    if wanted != set(calibration):
        odd = min(wanted ^ set(calibration))
        raise ModelError(f"int8 calibration does not match the model ({odd})")
    prepared.load_state_dict(calibration, strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fx(prepared).eval()


def precision(model: Encoder) -> str:
    """How embed runs `model` (a PRECISIONS key): a calibrated model on the CPU in int8 when
    int8_enabled (8- or 7-bit activations: full_range_int8), everything else in float32."""
    on_cpu = next(model.parameters()).device.type == "cpu"
    if not (on_cpu and model.int8_calibration is not None and int8_enabled()):
        return "float32"
    return "int8" if full_range_int8() else "int8-7bit"


@functools.lru_cache(maxsize=8)
def weights_digest(model: Encoder) -> str:
    """sha256 of what a model computes with: its config, weights and int8 calibration (not the
    checkpoint's other metadata, e.g. its recipe). Names the catalog's fingerprint stores and the
    saved int8 modules; computed once per loaded model (as _int8_of, it assumes the model is
    not trained in place afterwards)."""
    h = hashlib.sha256(repr(model.config).encode())
    for part in (model.state_dict(), model.int8_calibration or {}):
        for name, tensor in sorted(part.items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _int8_digest(model: Encoder, full_range: bool) -> str:
    """What the int8 module of `model` depends on: its weights, the activation bits, torch."""
    return hashlib.sha256(f"{torch.__version__} {INT8_ENGINE} {full_range} {weights_digest(model)}"
                          .encode()).hexdigest()


def _load_int8_module(path: Path, digest: str) -> nn.Module | None:
    """The cached int8 module at `path`, or None where it is missing, unreadable or another model's."""
    if not path.is_file():
        return None
    extra = {"digest": ""}
    try:
        with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export, whose
            warnings.simplefilter("ignore")  # programs cannot hold these quantized modules yet
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception:  # noqa: BLE001  (truncated or foreign file: a miss, rebuilt below)
        return None
    stored = extra["digest"]  # torch hands extra files back as bytes
    stored = stored.decode() if isinstance(stored, bytes) else stored
    return module.eval() if stored == digest else None


@functools.lru_cache(maxsize=8)
def _int8_of(model: Encoder, full_range: bool) -> nn.Module:
    """int8_encoder(model), kept on disk as TorchScript (settings().cache_dir / "int8").

    Building it runs torch.fx tracing and quantization: 4-6 s on the busy development machine,
    most of a cold CLI search; loading the saved module takes 0.1-0.3 s. The file is named and checked by a digest of
    everything the module depends on, and written atomically; a bad file is rebuilt."""
    assert model.int8_calibration is not None
    digest = _int8_digest(model, full_range)
    path = settings().cache_dir / "int8" / f"encoder-{digest[:32]}.pt"
    cached = _load_int8_module(path, digest)
    if cached is not None:
        return cached
    module = int8_encoder(model, model.int8_calibration, full_range)
    example = torch.zeros(1, model.config.n_bins, model.config.window.feature_frames)
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atomic_write(path, lambda f: torch.jit.save(traced, f, _extra_files={"digest": digest}))
    except OSError:  # a read-only cache folder: the module still works, built again next time
        pass
    return traced.eval()


def inference_module(model: Encoder) -> nn.Module:
    """What embed runs: the int8 version of `model` at its precision(), or the model itself.

    The int8 module is built once per loaded model (load_model's modules are never trained)."""
    mode = precision(model)
    return model if mode == "float32" else _int8_of(model, mode == "int8")


def embed(model: Encoder, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(n, n_bins, frames) model inputs -> (n, embedding_dim) float32 L2-normalised fingerprints.

    Batches of 64: on a CPU, 1.5x faster than 256 (cache-sized activations). A calibrated
    model runs in int8 on the CPU (inference_module).
    """
    model.eval()
    net = inference_module(model)
    device = next(model.parameters()).device
    out = []
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(settings().threads)
    try:  # a saved int8 module runs without the TorchScript profiling executor (its first
        # calls re-optimise the graph: 0.2-0.5 s of a cold search); torch deprecates the
        # quantized tensors it creates with a warning each process, not the user's concern
        with torch.inference_mode(), torch.jit.optimized_execution(False), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(0, len(windows), batch_size):
                x = torch.as_tensor(windows[i:i + batch_size]).to(device)
                out.append(net(x).float().cpu().numpy())
    finally:
        torch.set_num_threads(threads)
    if not out:
        return np.zeros((0, model.config.embedding_dim), np.float32)
    return np.concatenate(out).astype(np.float32)


def save_checkpoint(path: str | Path, model: Encoder, half: bool = True, **extra) -> None:
    """Write {model, config, int8_calibration?, **extra} atomically (weights in float16 when `half`)."""
    state = {k: (v.half() if half and v.is_floating_point() else v).cpu()
             for k, v in model.state_dict().items()}
    ckpt = {"model": state, "config": model.config.to_dict(), **extra}
    if model.int8_calibration is not None:
        ckpt["int8_calibration"] = model.int8_calibration
    write_checkpoint(path, ckpt)


def write_checkpoint(path: str | Path, ckpt: dict) -> None:
    """torch.save `ckpt` to `path` atomically (a temporary file, then a rename)."""
    from humdex.files import atomic_write

    atomic_write(path, lambda f: torch.save(ckpt, f))


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict at `path` (tensors and plain types only); ModelError when unusable."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"model checkpoint is corrupt or not a humdex model: {path} ({e})") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ModelError(f"model checkpoint lacks model/config: {path}")
    return ckpt


def model_from_checkpoint(ckpt: dict, source: str = "checkpoint") -> Encoder:
    """Rebuild the Encoder from a checkpoint dict (float32, eval mode)."""
    try:
        model = Encoder(ModelConfig.from_dict(ckpt["config"]))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in ckpt["model"].items()})
        model.int8_calibration = ckpt.get("int8_calibration")
    except (TypeError, RuntimeError, KeyError) as e:
        raise ModelError(f"model checkpoint does not match its config: {source} ({e})") from e
    return model.eval()


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> Encoder:
    return model_from_checkpoint(read_checkpoint(path), path)


def load_model(path: str | Path | None = None, name: str = "short") -> Encoder:
    """The Encoder stored at `path`, or the shipped default `name` when path is None (eval mode).

    Loaded with weights_only=True; a missing or corrupt file raises ModelError. Pure loader,
    cached per (path, mtime): callers must not train the returned module in place.
    """
    p = Path(path) if path is not None else default_model_path(name)
    if not p.is_file():
        raise ModelError(f"model checkpoint not found: {p}")
    return _load_cached(str(p.resolve()), p.stat().st_mtime_ns)
