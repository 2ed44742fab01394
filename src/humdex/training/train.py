"""Training the fingerprint encoder: one readable loop (K-group batches, group contrastive loss, AdamW, warmup+cosine).

train(train_groups, val_groups, config, out_dir) -> checkpoint path. It writes
out_dir/ckpt.pt = {model, optimizer, config, train_config, step, elapsed_s, metrics} (resumable),
out_dir/config.json, out_dir/metrics.jsonl and out_dir/curves.png.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from humdex.files import atomic_write_bytes, folder_lock, remove_stray_temp_files
from humdex.learned.features import feature_windows
from humdex.learned.model import Encoder, ModelConfig, embed, model_from_checkpoint, save_checkpoint
from humdex.learned.stores import FaissStore
from humdex.metrics import mean_reciprocal_rank, top_k_hit_rate
from humdex.training.data import (
    AugmentConfig,
    Bank,
    TrainGroup,
    TrainRendition,
    rendition_frames,
    sample_batch,
)
from humdex.training.loss import TAU, group_contrastive_loss


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    k_groups: int = 32  # groups per batch
    per_group: int = 4  # renditions per group per batch
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: float = 0.05  # fraction of training
    max_steps: int = 1000
    minutes: float | None = None  # wall-clock budget; when set, the schedule follows elapsed time
    tau: float = TAU
    mine: bool = False  # multi-similarity mining
    eval_every: int = 200
    val_queries: int | None = 300  # validation queries searched per evaluation (None: all)
    seed: int = 0
    recipe: str = ""  # the command line that trained it (kept in the checkpoint and the shipped model)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d["model"])
        aug = dict(d["augment"])
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        d["augment"] = AugmentConfig(**aug)
        return cls(**d)


def lr_at(progress: float, peak: float, warmup: float) -> float:
    """Learning rate at training progress in [0, 1]: linear warmup to `peak`, then cosine to 0."""
    if progress < warmup:
        return peak * progress / warmup
    t = min(1.0, (progress - warmup) / max(1e-9, 1.0 - warmup))
    return peak * 0.5 * (1.0 + math.cos(math.pi * t))


def retrieval_metrics(model: Encoder, groups: list[TrainGroup], reference: str = "original",
                      max_queries: int | None = None) -> dict[str, float]:
    """Top-1/top-10/MRR of every query rendition (hum, whistle, sung) among the melodies' references.

    A melody's reference is its first rendition of kind `reference` ("original": the song;
    "score": the MIDI-like pseudo-activation), or, for a melody that has none (CHAD's hummings
    alone), its first hum; the store holds one per melody, and a query is right when its
    melody comes back.
    """
    from humdex.learned.fingerprints import search_store

    spec = model.config.window
    refs: dict[str, TrainRendition] = {}
    for g in groups:
        for rd in g.renditions:
            if rd.kind == reference and g.melody_id not in refs:
                refs[g.melody_id] = rd
    first_hums = {}  # melodies without a reference: their first hum stands in (hums-only data)
    for g in groups:
        if g.melody_id not in refs and g.melody_id not in first_hums:
            first_hums[g.melody_id] = g.renditions[0]
    refs.update(first_hums)
    store = FaissStore(dim=model.config.embedding_dim)
    feature = model.config.feature
    store.add(list(refs), [embed(model, feature_windows(rendition_frames(rd), spec, feature)[0])
                           for rd in refs.values()])
    ranks: list[int | None] = []  # None: not in the top 10
    for g in groups:
        for rd in g.renditions:
            if rd.kind in ("original", "cover", "score") or rd is first_hums.get(g.melody_id):
                continue
            if max_queries is not None and len(ranks) >= max_queries:
                break
            q = embed(model, feature_windows(rendition_frames(rd), spec, feature)[0])
            found = [m.song_key for m in search_store(store, q, spec.hop_s, top=10)]
            ranks.append(found.index(g.melody_id) + 1 if g.melody_id in found else None)
    if not ranks:
        return {"top1": 0.0, "top10": 0.0, "mrr": 0.0, "n_queries": 0}
    return {"top1": top_k_hit_rate(ranks, 1), "top10": top_k_hit_rate(ranks, 10),
            "mrr": mean_reciprocal_rank(ranks), "n_queries": len(ranks)}


def plot_curves(metrics: list[dict], path: Path) -> None:
    """Loss (left) and validation top-1/top-10 (right) against step, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    tr = [m for m in metrics if "loss" in m]
    a.plot([m["step"] for m in tr], [m["loss"] for m in tr], lw=0.8)
    a.set(xlabel="step", ylabel="loss (mean per pair)", title="training loss")
    va = [m for m in metrics if "val_top1" in m]
    for key in ("val_top1", "val_top10", "val_score_top1", "val_score_top10"):
        if va and key in va[0]:
            b.plot([m["step"] for m in va], [m[key] for m in va], marker="o", label=key)
    b.set(xlabel="step", ylim=(0, 1), title="validation retrieval")
    if va:
        b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _save(out: Path, model: Encoder, opt: torch.optim.Optimizer, cfg: TrainConfig, step: int,
          elapsed_s: float, metrics: list[dict]) -> Path:
    from humdex.files import atomic_write

    ckpt = out / "ckpt.pt"
    state = {"model": {k: v.cpu() for k, v in model.state_dict().items()},
                "optimizer": opt.state_dict(), "config": cfg.model.to_dict(),
                "train_config": cfg.to_dict(), "step": step, "elapsed_s": elapsed_s,
                "metrics": metrics}
    atomic_write(ckpt, lambda f: torch.save(state, f))
    return ckpt


def train(train_groups: list[TrainGroup], val_groups: list[TrainGroup], cfg: TrainConfig,
          out_dir: str | Path, device: str = "cpu", resume: bool = False,
          log=print, init_state: dict | None = None) -> Path:
    """Train an encoder on `train_groups`, validating on `val_groups`; returns out_dir/ckpt.pt.

    init_state: weights to start from (fine-tuning; e.g. M_long from M_short) unless resuming.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):  # a run killed mid-save left a temporary file beside ckpt.pt
        remove_stray_temp_files(out)
    atomic_write_bytes(out / "config.json", json.dumps(cfg.to_dict(), indent=1).encode())
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = Encoder(cfg.model).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, elapsed, metrics = 0, 0.0, []
    if resume and (out / "ckpt.pt").is_file():
        ckpt = torch.load(out / "ckpt.pt", map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, elapsed, metrics = ckpt["step"], ckpt["elapsed_s"], list(ckpt["metrics"])
        rng = np.random.default_rng(cfg.seed + step)
        log(f"resumed at step {step} ({elapsed:.0f} s)")
    bank = Bank(train_groups, device)
    budget_s = cfg.minutes * 60 if cfg.minutes else None

    def progress() -> float:
        return min(1.0, elapsed / budget_s) if budget_s else step / cfg.max_steps

    bar = tqdm(total=cfg.max_steps if not budget_s else None, initial=step, desc="train",
               mininterval=5)
    while progress() < 1.0 and (budget_s or step < cfg.max_steps):
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(progress(), cfg.lr, cfg.warmup)
        model.train()
        x, labels = sample_batch(bank, cfg.model.window, cfg.k_groups, cfg.per_group, rng,
                                 cfg.augment, cfg.model.feature)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=str(device).startswith("cuda")):
            z = model(x)
        loss = group_contrastive_loss(z.float(), labels, tau=cfg.tau, mine=cfg.mine,
                                      reduction="mean")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        elapsed += time.perf_counter() - t0
        loss_value = float(loss.detach())
        metrics.append({"step": step, "loss": loss_value, "lr": opt.param_groups[0]["lr"],
                        "elapsed_s": round(elapsed, 2)})
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.3f}")
        done = progress() >= 1.0 or (not budget_s and step >= cfg.max_steps)
        if val_groups and (step % cfg.eval_every == 0 or done):
            val = retrieval_metrics(model, val_groups, max_queries=cfg.val_queries)
            row = {"step": step, **{f"val_{k}": v for k, v in val.items()}}
            if any(rd.kind == "score" for rd in val_groups[0].renditions):
                val_score = retrieval_metrics(model, val_groups, "score", cfg.val_queries)
                row.update({f"val_score_{k}": v for k, v in val_score.items()})
            metrics.append(row)
            log(f"step {step} loss {loss_value:.3f} " + " ".join(
                f"{k} {v:.3f}" for k, v in row.items() if k.startswith("val_") and "n_q" not in k)
                + f" ({elapsed:.0f} s)")
            _save(out, model, opt, cfg, step, elapsed, metrics)
    bar.close()
    ckpt = _save(out, model, opt, cfg, step, elapsed, metrics)
    atomic_write_bytes(out / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics).encode())
    plot_curves(metrics, out / "curves.png")
    return ckpt


def export_model(ckpt_path: str | Path, dest: str | Path) -> Path:
    """Turn a training checkpoint into a shippable float16 model file {model, config, step, metrics}."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model = model_from_checkpoint(ckpt, str(ckpt_path))
    val = [m for m in ckpt.get("metrics", []) if "val_top1" in m]
    save_checkpoint(dest, model, half=True, step=ckpt.get("step", 0),
                    metrics=val[-1] if val else {}, train_config=ckpt.get("train_config", {}))
    return Path(dest)


def load_mixture(roots: list[str], cache: str | None, max_fragments: int | None, feature: str,
                 audio_types: tuple[str, ...], workers: int = 1) -> tuple[list[TrainGroup], list[TrainGroup]]:
    """(train, validation) groups of several CHAD-layout folders together; a folder that is not
    one fails in one line. Each folder's features are cached in its own .humdex_cache (or in
    its own subfolder of `cache`). Validation groups are labelled per fragment: a fragment's
    hums are to find that fragment's original, not their melody's first one."""
    from humdex.errors import HumdexError
    from humdex.training.chad import METADATA_NAME
    from humdex.training.data import load_chad_groups

    train_groups: list[TrainGroup] = []
    val_groups: list[TrainGroup] = []
    for n, root in enumerate(roots):
        if not (Path(root) / METADATA_NAME).is_file():
            raise HumdexError(f"{root}: not a CHAD-layout folder (no {METADATA_NAME})")
        sub = None if cache is None else Path(cache) / (f"{n}_{Path(root).name}" if len(roots) > 1 else "")
        train_groups += load_chad_groups(root, "train", sub, max_fragments, feature=feature,
                                         audio_types=audio_types, workers=workers)
        val_groups += load_chad_groups(root, "validation", sub, max_fragments, feature=feature,
                                       audio_types=audio_types, workers=workers)
    val_groups = [TrainGroup(f"{g.melody_id}#{i}", g.renditions) for i, g in enumerate(val_groups)]
    return train_groups, val_groups


def run_train(args) -> int:
    from humdex.errors import HumdexError
    from humdex.learned.features import CQT_BINS, FEATURE_BINS, M_LONG, M_SHORT
    from humdex.training.data import model_feature

    feature = model_feature(args.feature)
    init = init_model(args.init, feature) if getattr(args, "init", None) else None
    types = ("original", "humming") if args.without_covers else ("original", "cover", "humming")
    train_groups, val_groups = load_mixture(args.chad, args.cache, args.max_fragments, args.feature, types,
                                             getattr(args, "workers", 1))
    if not train_groups:
        raise HumdexError(f"{', '.join(args.chad)}: no training fragments with two or more usable versions "
                          "(an original and a hum or cover, or two hums)")
    spec = M_SHORT if args.window == "short" else M_LONG
    bins = {"crepe": FEATURE_BINS, "cqt": CQT_BINS}[feature]
    model_cfg = init.config if init is not None else ModelConfig(
        feature=feature, n_bins=bins, window_s=spec.window_s, hop_s=spec.hop_s, base_channels=args.width)
    cfg = TrainConfig(model=model_cfg,
                      k_groups=args.k_groups, per_group=args.per_group, lr=args.lr,
                      max_steps=args.steps, minutes=args.minutes, mine=args.mine,
                      eval_every=args.eval_every,
                      recipe=shlex.join(getattr(args, "command_line", ["humdex", "train", *args.chad])))
    print(f"{len(train_groups)} training and {len(val_groups)} validation fragments")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = train(train_groups, val_groups, cfg, args.out, device=device, resume=args.resume,
                 init_state=init.state_dict() if init is not None else None)
    print(f"checkpoint: {ckpt}")
    if args.export:
        print(f"model: {export_model(ckpt, args.export)}")
    return 0


def init_model(spec: str, feature: str) -> Encoder:
    """The model `--init` names (a shipped name or a .pt file), checked against the training feature."""
    from humdex.errors import HumdexError
    from humdex.learned.model import load_model
    from humdex.learned.shipped import model_path

    model = load_model(model_path(spec))
    if model.config.feature != feature:
        raise HumdexError(f"--init {spec}: a {model.config.feature} model cannot be trained on {feature} features")
    return model
