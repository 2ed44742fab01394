"""Fine-tune an encoder on records: the melodies humdex's front end tracks from rendered records
(`humdex synth corpus --songs records --sound train`) beside clean scores and performed hums.

A catalog of audio songs meets the model through the song tracker (the mix's lead, with its
octave errors, gaps and leaks from the band); a MIDI catalog through the score. So each batch
draws from two kinds of groups:
- records groups (`train --feature contour` data): a fragment's original and covers as the song
  tracker hears them, its rendered hums, whistles and sung queries as the query tracker hears them;
- score groups (scripts/train_cpu_pseudo.py): a pool melody's score and performed hums, so the
  MIDI path keeps what it has.
Validation: the records corpora's validation split (records groups only), the measure of transfer.

    nice -n 5 python scripts/train_records.py data/records_train data/records_val --init short \\
        --minutes 40 --out runs/records_short --export runs/records_short/encoder.pt --workers 2
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("chad", nargs="+", help="records corpora (CHAD layout) with train and/or validation splits")
    p.add_argument("--init", default="short", help="shipped model name or .pt to start from")
    p.add_argument("--minutes", type=float, default=40.0)
    p.add_argument("--score-melodies", type=int, default=250, help="pool training melodies as score groups")
    p.add_argument("--performances", type=int, default=3)
    p.add_argument("--k-groups", type=int, default=32)
    p.add_argument("--per-group", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--val-queries", type=int, default=400)
    p.add_argument("--workers", type=int, default=1, help="processes tracking the corpora's melodies once")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--export", default=None)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from train_cpu_pseudo import performed_groups

    from humdex.training.melody_pool import load_pool
    from humdex.training.train import (
        TrainConfig,
        export_model,
        init_model,
        load_mixture,
        retrieval_metrics,
        train,
    )

    init = init_model(args.init, "crepe")
    records, val = load_mixture(args.chad, None, None, "contour", ("original", "cover", "humming"), args.workers)
    pool = load_pool("train")
    picks = np.random.default_rng(0).permutation(len(pool))[: args.score_melodies]
    scores = performed_groups([pool[i] for i in picks], args.performances, 1, as_contours=True)
    print(f"{len(records)} records groups + {len(scores)} score groups; {len(val)} validation groups")
    cfg = TrainConfig(model=init.config, k_groups=args.k_groups, per_group=args.per_group, lr=args.lr,
                      minutes=args.minutes, eval_every=args.eval_every, val_queries=args.val_queries,
                      warmup=0.02, recipe=shlex.join(["python", "scripts/train_records.py", *sys.argv[1:]]))
    out = Path(args.out)
    if not (out / "baseline.json").is_file():  # the initial model on the same validation queries
        out.mkdir(parents=True, exist_ok=True)
        base = retrieval_metrics(init, val, max_queries=args.val_queries)
        (out / "baseline.json").write_text(json.dumps(base, indent=1))
    print(f"initial model: {json.loads((out / 'baseline.json').read_text())}")
    ckpt = train(records + scores, val, cfg, args.out, device="cpu", resume=args.resume,
                 init_state=init.state_dict())
    if args.export:
        print(f"model: {export_model(ckpt, args.export)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
