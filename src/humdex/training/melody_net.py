"""Training the melody net (frontend.melody_net) on records whose lead is known.

    features(corpus, features_dir)                 net inputs of every record, float16 .npy (resumable)
    train([features_dir, ...], val_dir, run_dir)   crops of the records, soft pitch targets, checkpoints

Targets per 10 ms frame: a Gaussian over the salience grid's pitches around the true lead
(TARGET_SIGMA_BINS), or "no lead" where it rests; frames whose lead lies outside the grid do not
count. A run resumes from its last checkpoint (run_dir/checkpoint.pt) and logs its curve to
run_dir/curve.json; validation is pitch accuracy on held-back records (melody-disjoint: pool
validation melodies) decoded as the product decodes them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from humdex.frontend import melody_net
from humdex.frontend.melody_net import MelodyNetConfig
from humdex.frontend.pitch import HOP_SAMPLES, TRACKER_RATE, hz_to_midi
from humdex.frontend.salience import midi_grid

TARGET_SIGMA_BINS = 1.0


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch: int = 8
    crop_frames: int = 256
    lr: float = 1e-3
    final_lr_share: float = 0.1  # cosine decay to lr * this at the last step
    checkpoint_every: int = 100
    seed: int = 0
    timbre_db: float = 0.0  # augmentation: sd of a gain per harmonic channel and crop (another timbre)
    level_db: float = 0.0  # augmentation: sd of a gain on all channels per crop (another song level)


def lead_targets(lead_midi: np.ndarray, n_frames: int, config: MelodyNetConfig) -> tuple[np.ndarray, np.ndarray]:
    """(frames,) true lead (NaN rests) -> targets (T, bins + 1) float32 summing to 1, weights (T,)
    (0 where the lead is outside the grid). T = n_frames; missing truth frames are rests."""
    grid = midi_grid(config.salience)
    lead = np.full(n_frames, np.nan, np.float64)
    m = min(n_frames, len(lead_midi))
    lead[:m] = lead_midi[:m]
    targets = np.zeros((n_frames, len(grid) + 1), np.float32)
    weights = np.ones(n_frames, np.float32)
    rest = ~np.isfinite(lead)
    targets[rest, -1] = 1.0
    voiced = ~rest
    pos = (lead[voiced] - grid[0]) * config.salience.bins_per_semitone
    inside = (pos >= -0.5) & (pos <= len(grid) - 0.5)
    gauss = np.exp(-0.5 * ((np.arange(len(grid))[None, :] - pos[:, None]) / TARGET_SIGMA_BINS) ** 2)
    gauss /= np.maximum(gauss.sum(axis=1, keepdims=True), 1e-12)
    rows = np.flatnonzero(voiced)
    targets[rows, :-1] = gauss
    weights[rows[~inside]] = 0.0
    targets[rows[~inside]] = 0.0
    return targets, weights


def features(corpus: Path, out: Path, config: MelodyNetConfig) -> list[Path]:
    """Net inputs (float16 .npy) and lead truth (.lead.npy) of every corpus record; resumable."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    done = []
    for path in tqdm(sorted(Path(corpus).glob("*.npz")), desc="features", unit="record"):
        if path.name.endswith(".tmp.npz"):
            continue
        target = out / f"{path.stem}.npy"
        if not target.is_file():
            rec = np.load(path)
            audio = rec["audio16"].astype(np.float32) / 32768.0
            x = melody_net.net_input(audio, TRACKER_RATE, HOP_SAMPLES, config).astype(np.float16)
            np.save(out / f"{path.stem}.lead.npy", rec["lead_midi"].astype(np.float32))
            tmp = out / f"{path.stem}.tmp.npy"
            np.save(tmp, x)
            tmp.replace(target)
        done.append(target)
    return done


def _load_records(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(net input memory-mapped, lead) of each record that features() finished in `folder`."""
    paths = sorted(p for p in Path(folder).glob("*.npy") if not p.name.endswith((".lead.npy", ".tmp.npy")))
    return [(np.load(p, mmap_mode="r"), np.load(p.with_suffix(".lead.npy"))) for p in paths]


def train(features_dirs: list[Path], val_dir: Path, run_dir: Path, config: MelodyNetConfig | None = None,
          train_config: TrainConfig | None = None, threads: int = 2, init: Path | None = None) -> dict[str, Any]:
    """Train (or resume) a melody net; returns the curve. The best model by validation pitch
    accuracy is kept in run_dir/best.pt (melody_net.save format). `init`: weights (a best.pt or
    the shipped net) a new run starts from, fine-tuning them; their config replaces `config`."""
    import torch
    from tqdm import tqdm

    config = config or MelodyNetConfig()
    train_config = train_config or TrainConfig()
    torch.set_num_threads(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    records = [r for folder in features_dirs for r in _load_records(folder)]
    val_records = _load_records(val_dir)
    if init is not None:
        model, config = melody_net.load(init)
    else:
        model = melody_net.build_model(config)
    opt = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, train_config.steps,
                                                       eta_min=train_config.lr * train_config.final_lr_share)
    curve: dict[str, Any] = {"config": config.to_dict(), "train_config": dataclasses.asdict(train_config),
                             "records": len(records), "val_records": len(val_records), "points": [],
                             "init": str(init) if init else None}
    step = 0
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.is_file():
        blob = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["opt"])
        sched.load_state_dict(blob["sched"])
        step, curve = blob["step"], blob["curve"]
    rng = np.random.default_rng([train_config.seed, step])
    best = max((p["val_pitch_accuracy"] for p in curve["points"]), default=-1.0)
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(total=train_config.steps, initial=step, desc="melody net", unit="step")
    while step < train_config.steps:
        x, y, w = _batch(records, rng, train_config, config)
        model.train()
        logits = model(torch.from_numpy(x))
        loss_frames = -(torch.from_numpy(y) * torch.log_softmax(logits, dim=2)).sum(dim=2)
        wt = torch.from_numpy(w)
        loss = (loss_frames * wt).sum() / wt.sum().clamp(min=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        losses.append(loss.item())
        bar.update(1)
        if step % train_config.checkpoint_every == 0 or step == train_config.steps:
            val = validate(model, val_records, config)
            point = {"step": step, "train_loss": float(np.mean(losses)), **val,
                     "seconds": round(time.perf_counter() - t0, 1)}
            losses = []
            curve["points"].append(point)
            bar.set_postfix(loss=f"{point['train_loss']:.3f}", val_acc=f"{val['val_pitch_accuracy']:.3f}")
            if val["val_pitch_accuracy"] > best:
                best = val["val_pitch_accuracy"]
                melody_net.save(run_dir / "best.pt", model, config, step=step, validation=val)
            tmp = run_dir / "checkpoint.tmp.pt"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": step, "curve": curve}, tmp)
            tmp.replace(ckpt)
            (run_dir / "curve.json").write_text(json.dumps(curve, indent=1))
    bar.close()
    return curve


def _batch(records: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, tc: TrainConfig,
           config: MelodyNetConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ws = [], [], []
    for i in rng.integers(0, len(records), tc.batch):
        x, lead = records[int(i)]
        n_t = x.shape[1]
        start = int(rng.integers(0, max(1, n_t - tc.crop_frames)))
        crop = np.zeros((x.shape[0], tc.crop_frames, x.shape[2]), np.float32)
        part = x[:, start:start + tc.crop_frames]
        crop[:, :part.shape[1]] = part
        y, w = lead_targets(lead[start:start + tc.crop_frames], tc.crop_frames, config)
        w[part.shape[1]:] = 0.0
        if tc.timbre_db or tc.level_db:
            gains_db = np.append(rng.normal(0.0, tc.timbre_db, len(config.harmonics)), 0.0)
            crop = regain(crop, gains_db + rng.normal(0.0, tc.level_db))
        xs.append(crop)
        ys.append(y)
        ws.append(w)
    return np.stack(xs), np.stack(ys), np.stack(ws)


def regain(x: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """Net input (C, T, bins) as if channel c's spectrum had been gains_db[c] louder: the inputs
    are log1p(10 * level-divided magnitude), so the magnitude is scaled inside the log."""
    gain = (10.0 ** (np.asarray(gains_db, np.float64) / 20.0)).astype(np.float32)[:, None, None]
    return np.log1p(gain * np.expm1(x)).astype(np.float32)


def validate(model: Any, records: list[tuple[np.ndarray, np.ndarray]], config: MelodyNetConfig) -> dict[str, float]:
    """Mean over records of frame scores (humdex.metrics.melody_accuracy) of the decoded melody,
    voiced where periodicity >= 0.5, and the mean loss."""
    from humdex.metrics import melody_accuracy

    model.eval()
    acc, vfa, loss = [], [], []
    for x, lead in records:
        lp = melody_net.log_probs(model, np.asarray(x, dtype=np.float32))
        y, w = lead_targets(lead, len(lp), config)
        loss.append(float((-(y * lp).sum(axis=1) * w).sum() / max(w.sum(), 1.0)))
        f0_hz, periodicity = melody_net.decode(lp, config)
        midi = np.where(periodicity >= 0.5, hz_to_midi(f0_hz), np.nan)
        n = min(len(lead), len(midi))
        scores = melody_accuracy(lead[:n], midi[:n])
        acc.append(scores["pitch_accuracy"])
        vfa.append(scores["voicing_false_alarm"])
    return {"val_loss": float(np.mean(loss)), "val_pitch_accuracy": float(np.mean(acc)),
            "val_voicing_false_alarm": float(np.mean(vfa))}
