"""kill -9 during `humdex train`, N times at random moments: after each kill the run folder's
checkpoint loads (or was never written), its step never goes back, and `--resume` finally
finishes the run (issue 17: no half-written checkpoint after a crash).

    PYTHONPATH=src:tests python benchmarks/train_kill.py --rounds 10
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_train import make_groups, write_chad

STEPS = 3000


def train_cmd(corpus: Path, run: Path) -> list[str]:
    return [sys.executable, "-m", "humdex", "train", str(corpus), "--out", str(run), "--steps", str(STEPS),
            "--eval-every", "25", "--width", "4", "--k-groups", "6", "--per-group", "3", "--resume"]


def checkpoint_step(run: Path) -> int | None:
    """The saved step, None when no checkpoint was written yet; raises if it does not load."""
    path = run / "ckpt.pt"
    return int(torch.load(path, weights_only=True)["step"]) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        corpus, run = Path(tmp) / "chad", Path(tmp) / "run"
        write_chad(corpus, make_groups(12, seed=3, n_notes=16))
        env = {**os.environ, "HUMDEX_THREADS": "1"}
        steps, corrupt, mid_work = [], 0, 0
        for _ in range(args.rounds):
            proc = subprocess.Popen(train_cmd(corpus, run), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(5.0, 20.0))  # past start-up (5-15 s), mostly before the end
            mid_work += proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            try:
                step = checkpoint_step(run)
            except Exception as err:  # noqa: BLE001  a checkpoint that does not load is the failure counted
                corrupt += 1
                print(f"corrupt checkpoint: {err}", flush=True)
                continue
            if steps and step is not None and steps[-1] is not None and step < steps[-1]:
                corrupt += 1
                print(f"step went back: {steps[-1]} -> {step}", flush=True)
            steps.append(step)
        left = sum(p.name.endswith(".tmp") for p in run.iterdir())  # killed mid-save
        done = subprocess.run(train_cmd(corpus, run), env=env, capture_output=True, text=True, check=False)
        final = checkpoint_step(run)
        after = sum(p.name.endswith(".tmp") for p in run.iterdir())
        print(f"rounds {args.rounds}: killed mid-work {mid_work}, corrupt or regressed {corrupt}; "
              f"steps after each kill {steps}; final run exit {done.returncode}, step {final} of {STEPS}; "
              f"temporary files left by killed saves {left}, after the resumed run {after}")


if __name__ == "__main__":
    main()
