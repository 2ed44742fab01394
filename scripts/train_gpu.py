"""Train humdex's fingerprint encoders in one self-contained run on a lent GPU box (or, small, a CPU).

Two models, each exported to --out as soon as it is done (a run cut short keeps the first):

1. M_short on performed pitch (the product's default input: tracked pitch as a CREPE-like
   pseudo-activation), fine-tuned from the shipped M_short on many more melodies and bigger
   batches than a CPU allows. Worker processes perform the melodies (synth performer model);
   the GPU expands the f0 contours into pseudo-activations (data.Bank).
2. M_short on CQT features of rendered audio (songs with accompaniment, covers, hums,
   whistles: humdex.synth.corpus), CQT computed in the workers with the product's own
   features.cqt_features. The workers render while model 1 trains.

The shipped M_short is scored on the same validation groups first, as the baseline. Packages
the box lacks (nnAudio, faiss) come from --carry / wheels; torchcrepe is not needed.

    python scripts/train_gpu.py --out OUT --pseudo-s 150 --cqt-s 150            # GPU box
    python scripts/train_gpu.py --device cpu --out /tmp/t --pseudo-s 15 --cqt-s 15 --workers 2 \\
        --k-groups 8 --pseudo-melodies 30 --val-melodies 10 --eval-every 20     # CPU smoke
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # workers: one thread each
STOP_RENDERING = mp.get_context("fork").Event()  # set: queued render jobs return at once


def perform_chunk(job):  # runs in a worker process
    """(melodies, n_perf, seed) -> TrainGroups of f0 contours (small to pickle)."""
    from train_cpu_pseudo import performed_groups

    melodies, n_perf, seed = job
    return "pseudo", performed_groups(melodies, n_perf, seed, as_contours=True)


def render_cqt(job):  # runs in a worker process
    """One melody -> ("cqt", TrainGroups whose renditions are (T, 84) float16 CQT), one group per fragment:
    [full original, full covers, the fragment's hums/whistles/sung queries]."""
    import numpy as np
    import torch

    from humdex.learned.features import cqt_features
    from humdex.synth.corpus import CorpusConfig, render_corpus_group
    from humdex.training.data import TrainGroup, TrainRendition

    torch.set_num_threads(1)
    if STOP_RENDERING.is_set():
        return "cqt", []
    try:
        out = render_corpus_group(job, CorpusConfig(full_songs="all"))
    except Exception:  # noqa: BLE001 - a melody the renderer rejects is skipped, not fatal
        return "cqt", []
    rows = [(rec.fragment_id, rec.audio_type,
             TrainRendition(cqt_features(rend.audio, 16000).astype(np.float16),
                            np.stack([rend.time_map.perf_s, rend.time_map.score_s], 1), rend.kind))
            for rec, rend in out]
    full = sorted((r for fid, _, r in rows if fid == "full"), key=lambda r: r.kind != "original")
    groups = []
    for fid in sorted({fid for fid, _, _ in rows} - {"full"}):
        queries = [r for f, audio_type, r in rows if f == fid and audio_type == "humming"]
        if full and full[0].kind == "original" and queries:
            groups.append(TrainGroup(job.melody_id, tuple(full + queries)))
    return "cqt", groups


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--carry", default=str(ROOT / ".carry"), help="folder holding nnAudio (and pool.npz)")
    p.add_argument("--pseudo-s", type=float, default=150.0, help="training seconds, pseudo M_short")
    p.add_argument("--cqt-s", type=float, default=150.0, help="training seconds, CQT M_short")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    p.add_argument("--k-groups", type=int, default=128)
    p.add_argument("--lr", type=float, nargs=2, default=(1e-3, 2e-3), help="pseudo (fine-tune), CQT")
    p.add_argument("--cqt-width", type=int, default=32)
    p.add_argument("--pseudo-melodies", type=int, default=1500)
    p.add_argument("--performances", type=int, default=4)
    p.add_argument("--cqt-melodies", type=int, default=6000, help="rendered until the pseudo model is done")
    p.add_argument("--val-melodies", type=int, default=120)
    p.add_argument("--eval-every", type=int, default=2500)
    p.add_argument("--val-queries", type=int, default=240, help="validation queries per evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", default=None, help="melody pool .npz (default: the shipped one)")
    p.add_argument("--run-dir", default="/tmp/humdex_train", help="training checkpoints (not --out)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(args.carry)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logf = open(out / "log.txt", "a")  # noqa: SIM115 - open for the whole run
    t_start = time.time()

    def log(msg: str) -> None:
        line = f"[{time.time() - t_start:6.1f} s] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    import numpy as np
    import torch

    from humdex.learned.features import M_SHORT
    from humdex.learned.model import ModelConfig, load_model
    from humdex.synth.corpus import MelodyJob
    from humdex.training.melody_pool import load_pool
    from humdex.training.train import TrainConfig, retrieval_metrics, train

    torch.backends.cudnn.benchmark = True
    rng = np.random.default_rng(args.seed)
    pool_path = {"path": Path(args.pool)} if args.pool else {}
    val = load_pool("validation", **pool_path)
    tr = load_pool("train", **pool_path)
    val = [val[i] for i in rng.permutation(len(val))[: args.val_melodies]]
    tr = [tr[i] for i in rng.permutation(len(tr))]
    pseudo_tr, cqt_tr = tr[: args.pseudo_melodies], tr[: args.cqt_melodies]
    chunk = 10
    jobs = [((val[i:i + chunk], args.performances, 10_000 + i), True) for i in range(0, len(val), chunk)]
    jobs += [((pseudo_tr[i:i + chunk], args.performances, i), False) for i in range(0, len(pseudo_tr), chunk)]
    cqt_jobs = [MelodyJob(f"{m.split}_{i:05d}", m.melody_id, m.corpus, m.split, m.onset_s, m.duration_s,
                          m.pitch_midi, args.seed, i) for i, m in enumerate(val + cqt_tr)]
    workers = mp.get_context("fork").Pool(args.workers)
    pseudo_results = [workers.apply_async(perform_chunk, (job,)) for job, _ in jobs]
    cqt_results = [workers.apply_async(render_cqt, (job,)) for job in cqt_jobs]  # queued behind
    summary: dict = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}

    # 1. pseudo M_short, fine-tuned from the shipped one
    groups = {True: [], False: []}
    for (_, is_val), res in zip(jobs, pseudo_results):
        groups[is_val].extend(res.get()[1])
    pseudo_val = [_expanded(g) for g in groups[True]]  # searched as is: (T, 360) activations
    pseudo_train = groups[False]
    n_frames = sum(len(r.activation) for g in pseudo_train for r in g.renditions)
    log(f"pseudo: {len(pseudo_train)} train melodies ({n_frames / 360_000:.1f} h), {len(pseudo_val)} val")
    shipped = load_model(name="short").to(args.device)
    summary["pseudo_baseline"] = retrieval_metrics(shipped, pseudo_val, max_queries=args.val_queries)
    log(f"shipped M_short on pseudo validation: {summary['pseudo_baseline']}")
    cfg = TrainConfig(model=shipped.config, k_groups=args.k_groups, per_group=4, lr=args.lr[0],
                      minutes=args.pseudo_s / 60, eval_every=args.eval_every, val_queries=args.val_queries,
                      warmup=0.02, seed=args.seed)
    _run(out, "pseudo_short", lambda run: train(pseudo_train, pseudo_val, cfg, run,
                                                 device=args.device, log=log,
                                                 init_state=shipped.state_dict()), args, summary, log)
    pseudo_train.clear()  # the contours; the GPU bank went with train()
    if args.device == "cuda":
        torch.cuda.empty_cache()

    # 2. CQT M_short on what the workers rendered meanwhile (validation melodies came first)
    STOP_RENDERING.set()
    cqt_val, cqt_train, n_done = [], [], 0
    for i, res in enumerate(cqt_results):
        groups_i = res.get()[1]
        n_done += bool(groups_i)
        (cqt_val if i < len(val) else cqt_train).extend(groups_i)
    workers.close()
    log(f"cqt: {n_done} melodies rendered, {len(cqt_train)} train groups, {len(cqt_val)} val groups")
    summary["cqt_rendered_melodies"] = n_done
    if cqt_train and cqt_val:
        cfg = TrainConfig(model=ModelConfig(feature="cqt", n_bins=84, window_s=M_SHORT.window_s,
                                            hop_s=M_SHORT.hop_s, base_channels=args.cqt_width),
                          k_groups=args.k_groups, per_group=4, lr=args.lr[1], minutes=args.cqt_s / 60,
                          eval_every=args.eval_every, val_queries=args.val_queries, seed=args.seed)
        _run(out, "cqt_short", lambda run: train(cqt_train, cqt_val, cfg, run, device=args.device, log=log),
             args, summary, log)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    log(f"done; modules loaded: {sorted(m for m in ('librosa', 'music21', 'soundfile', 'numba') if m in sys.modules)}")
    return 0


def _expanded(group):
    """A group of f0 contours -> the same with (T, 360) pseudo-activations (validation: searched as is)."""
    import numpy as np

    from humdex.frontend.contour import Contour
    from humdex.learned.features import contour_to_activation
    from humdex.training.data import TrainGroup, TrainRendition

    return TrainGroup(group.melody_id, tuple(
        TrainRendition(contour_to_activation(Contour(r.activation, 0.01)).astype(np.float16), r.time_map, r.kind)
        for r in group.renditions))


def _run(out: Path, name: str, fit, args, summary: dict, log) -> None:
    """Train (fit(run_dir) -> ckpt), then export the float16 model, curves and metrics to out."""
    import torch

    from humdex.training.train import export_model

    t0 = time.time()
    run = Path(args.run_dir) / name
    ckpt = fit(run)
    export_model(ckpt, out / f"encoder_{name}.pt")
    shutil.copy(run / "curves.png", out / f"curves_{name}.png")
    shutil.copy(run / "metrics.jsonl", out / f"metrics_{name}.jsonl")
    c = torch.load(ckpt, map_location="cpu", weights_only=True)
    summary[name] = {"steps": c["step"], "train_s": c["elapsed_s"], "wall_s": time.time() - t0,
                     "val": [m for m in c["metrics"] if "val_top1" in m]}
    log(f"{name}: {json.dumps(summary[name])}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # no wait on the killed render workers' pool threads
