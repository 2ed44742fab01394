"""`humdex selftrain`: the CHAD paper's self-training rounds (DESIGN.md 1.3).

Round 0 trains M0 on hums + originals only (the hum folders, covers left out) and mines the
cover groups with it; round k trains M_k on the hums + the fragments mined in round k - 1
(started from M_{k-1}'s weights, or from scratch) and mines again with M_k. Every round keeps
its model, mined data and metrics under OUT/round{k}/ (model/ckpt.pt, mined/, metrics.json);
a round with metrics.json is done, and a killed round resumes (training from its last
checkpoint, mining from its last finished group). OUT/rounds.json and OUT/rounds.png sum up.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from humdex.errors import HumdexError
from humdex.training.mining import MineConfig, mine, read_groups

WITHOUT_COVERS = ("original", "humming")
ALL_TYPES = ("original", "cover", "humming")


@dataclass(frozen=True)
class SelfTrainConfig:
    rounds: int = 2  # mined retrainings after M0: models M0 .. M_rounds
    steps: int = 300  # training steps per round
    feature: str = "cqt"  # crepe | cqt | contour (the tracked melody: trained on and mined with)
    width: int = 16
    start: str | None = None  # M0 fine-tunes this shipped model name or .pt file (its architecture)
    k_groups: int = 32
    per_group: int = 4
    lr: float = 2e-3
    eval_every: int = 100
    val_queries: int | None = 300
    init: str = "previous"  # previous | scratch
    workers: int = 1
    device: str = "cpu"
    mine: MineConfig = field(default_factory=MineConfig)


def train_config(cfg: SelfTrainConfig):  # -> TrainConfig
    from humdex.learned.features import CQT_BINS, FEATURE_BINS, M_SHORT
    from humdex.learned.model import ModelConfig
    from humdex.training.data import model_feature
    from humdex.training.train import TrainConfig, init_model

    feature = model_feature(cfg.feature)
    if cfg.start is not None:
        model = init_model(cfg.start, feature).config
    else:
        bins = {"crepe": FEATURE_BINS, "cqt": CQT_BINS}[feature]
        model = ModelConfig(feature=feature, n_bins=bins, window_s=M_SHORT.window_s, hop_s=M_SHORT.hop_s,
                            base_channels=cfg.width)
    return TrainConfig(model=model, k_groups=cfg.k_groups, per_group=cfg.per_group, lr=cfg.lr,
                       max_steps=cfg.steps, eval_every=cfg.eval_every, val_queries=cfg.val_queries, seed=0)


def mine_config(cfg: SelfTrainConfig) -> MineConfig:
    """Mining feeds the model what it was trained on: contour-trained models the tracked melody."""
    return replace(cfg.mine, frames="contour" if cfg.feature == "contour" else "model")


def _start_weights(k: int, out: Path, cfg: SelfTrainConfig) -> dict | None:
    """The weights M_k starts from: M_{k-1}'s (init "previous"), else --from's model, else none."""
    import torch

    from humdex.training.data import model_feature
    from humdex.training.train import init_model

    if k > 0 and cfg.init == "previous":
        return torch.load(out / f"round{k - 1}" / "model" / "ckpt.pt", map_location="cpu",
                          weights_only=True)["model"]
    return init_model(cfg.start, model_feature(cfg.feature)).state_dict() if cfg.start else None


def run_round(k: int, hums: list[str], groups_csv: str | Path, out: Path, cfg: SelfTrainConfig,
              truth: str | Path | None = None, log=print) -> dict:
    """Train M_k and mine the cover groups with it; the round's metrics (also in metrics.json)."""
    import torch

    from humdex.training.train import load_mixture, train

    rdir = out / f"round{k}"
    done = rdir / "metrics.json"
    if done.is_file():
        return json.loads(done.read_text())
    t0 = time.process_time()
    w0 = time.perf_counter()
    # covers only from the mined folder: hum folders give hums + originals (M0's diet)
    # (their features cached in each folder's own .humdex_cache, as `humdex train` does)
    train_g, val_g = load_mixture(list(hums), None, None, cfg.feature, WITHOUT_COVERS)
    if k > 0:
        mined_train, _ = load_mixture([str(out / f"round{k - 1}" / "mined")],
                                      str(out / "cache_mined" / f"round{k - 1}"), None,
                                      cfg.feature, ALL_TYPES)
        train_g += mined_train
    else:
        mined_train = []
    if not train_g:
        raise HumdexError(f"{', '.join(hums)}: no hum/original training fragments")
    model_dir = rdir / "model"
    init = None if (model_dir / "ckpt.pt").is_file() else _start_weights(k, out, cfg)
    log(f"round {k}: training M{k} on {len(train_g)} fragment groups "
        f"({len(mined_train)} mined), {len(val_g)} validation")
    ckpt = train(train_g, val_g, train_config(cfg), model_dir, device=cfg.device, resume=True,
                 log=log, init_state=init)
    train_cpu, train_wall = time.process_time() - t0, time.perf_counter() - w0
    t1, w1 = time.process_time(), time.perf_counter()
    report = mine(read_groups(groups_csv), str(ckpt), rdir / "mined", mine_config(cfg), cfg.workers,
                  cache=out / "cache_mine_features", progress=False, log=log)
    metrics = json.loads(json.dumps(torch.load(ckpt, map_location="cpu", weights_only=True)["metrics"]))
    val = [m for m in metrics if "val_top1" in m]
    row: dict = {"round": k, "model": str(ckpt), "train_fragments": len(train_g),
                 "mined_fragments_used": len(mined_train),
                 "val": val[-1] if val else {}, "mined": report.counts,
                 "thresholds": {"accept": report.accept, "review": report.review},
                 "train_wall_s": round(train_wall, 1), "train_cpu_s": round(train_cpu, 1),
                 "mine_wall_s": round(time.perf_counter() - w1, 1),
                 "mine_cpu_s": round(time.process_time() - t1, 1)}
    if truth is not None:
        used = replace(cfg.mine, accept=report.accept, review=report.review)  # calibrated ones, if asked for
        row["mining_quality"] = mining_quality(Path(truth), rdir / "mined", used)
    done.write_text(json.dumps(row, indent=1))
    log(f"round {k}: {report.summary()}; val {row['val']}")
    return row


def mining_quality(songs_csv: Path, mined: Path, config: MineConfig) -> dict:
    """Precision/recall of the round's mining against the renderer's time maps (songs.csv)."""
    from humdex.training.chad import read_metadata
    from humdex.training.mining_eval import judge_pair, quality

    maps = {r.id: r.time_map for r in read_metadata(songs_csv)}
    rows = read_metadata(mined / "metadata.csv")
    originals = {(r.group_id, r.fragment_id): r for r in rows if r.audio_type == "original"}
    judged = []
    for r in rows:
        o = originals.get((r.group_id, r.fragment_id))
        if r.audio_type != "cover" or o is None:
            continue
        omap, cmap = maps.get(Path(o.extra["source"]).stem), maps.get(Path(r.extra["source"]).stem)
        if omap is not None and cmap is not None:
            judged.append(judge_pair(omap, o.interval, cmap, r.interval, r.correlation or 0.0))
    return quality(judged, config.accept, config.review).__dict__


def selftrain(hums: list[str], groups_csv: str | Path, out: str | Path, cfg: SelfTrainConfig,
              truth: str | Path | None = None, log=print) -> list[dict]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_round(k, hums, groups_csv, out, cfg, truth, log) for k in range(cfg.rounds + 1)]
    (out / "rounds.json").write_text(json.dumps(rows, indent=1))
    plot_rounds(rows, out / "rounds.png")
    return rows


def plot_rounds(rows: list[dict], path: Path) -> None:
    """Validation top-1/top-10 and mining yield (and precision/recall when judged) per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [r["round"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key in ("top1", "top10"):
        a.plot(ks, [r["val"].get(f"val_{key}", float("nan")) for r in rows], marker="o", label=key)
    a.set(xlabel="round (model M_k)", ylabel="hit rate", ylim=(0, 1), title="hums -> originals (validation)")
    a.set_xticks(ks)
    a.legend()
    total = [max(1, sum(r["mined"].values())) for r in rows]
    b.plot(ks, [r["mined"].get("accepted", 0) / t for r, t in zip(rows, total)], marker="o", label="accepted share")
    b.plot(ks, [r["mined"].get("uncertain", 0) / t for r, t in zip(rows, total)], marker="o", label="review share")
    if all("mining_quality" in r for r in rows):
        b.plot(ks, [r["mining_quality"]["precision"] for r in rows], marker="s", label="precision")
        b.plot(ks, [r["mining_quality"]["recall"] for r in rows], marker="s", label="recall")
    b.set(xlabel="round (mined with M_k)", ylim=(0, 1), title="mining of the cover groups")
    b.set_xticks(ks)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_selftrain(args: argparse.Namespace) -> int:
    if args.rounds < 0 or args.steps < 1:
        raise HumdexError("--rounds must be >= 0 and --steps >= 1")
    if not 0.0 <= args.review <= args.accept <= 1.0:
        raise HumdexError("--review and --accept must satisfy 0 <= review <= accept <= 1")
    if not 0.0 <= args.calibrate < 0.2:
        raise HumdexError("--calibrate is a share of unrelated pairs to let through: 0 (off) up to 0.2")
    read_groups(args.groups)  # a bad GROUPS.csv or --from model fails before any training
    if args.start is not None:
        from humdex.training.data import model_feature
        from humdex.training.train import init_model

        init_model(args.start, model_feature(args.feature))
    cfg = SelfTrainConfig(rounds=args.rounds, steps=args.steps, feature=args.feature, width=args.width,
                          start=args.start, lr=args.lr, k_groups=args.k_groups, per_group=args.per_group,
                          eval_every=args.eval_every, val_queries=args.val_queries,
                          init=args.init, workers=args.workers, device=args.device,
                          mine=replace(MineConfig(), accept=args.accept, review=args.review,
                                       separate=args.separate, calibrate=args.calibrate))
    rows = selftrain(args.hums, args.groups, args.out, cfg, args.truth)
    for r in rows:
        v = r["val"]
        print(f"M{r['round']}: val top1 {v.get('val_top1', float('nan')):.3f} "
              f"top10 {v.get('val_top10', float('nan')):.3f}; mined {r['mined']}")
    print(f"rounds: {Path(args.out) / 'rounds.json'}, plot: {Path(args.out) / 'rounds.png'}")
    return 0
