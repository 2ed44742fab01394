"""How often two processes compiling one cached gufunc at once leave a kernel cache that crashes
the next process: stock numba against humdex.kernel_cache (issue 13).

Each round: a fresh cache folder; two processes (one with other kernels compiled first, which
moves numba's per-process function uids, as torch or humdex's own kernels do) compile the same
two-signature gufunc at the same moment; then fresh processes call both signatures.

    python benchmarks/numba_cache_race.py --rounds 30
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_kernel_cache import GUFUNC, NJIT, RUN


def _env(cache: Path, stock: bool, shift: int, dtype: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "SHIFT": str(shift), "DTYPE": dtype,
           "CALL": "twice"}
    env.pop("STOCK", None)
    return {**env, "STOCK": "1"} if stock else env


def one_round(work: Path, stock: bool) -> tuple[bool, bool]:
    """(the concurrent fill crashed, a later process crashed)"""
    cache = work / "cache"
    start = time.time() + 1.5  # both processes start compiling near this instant, up to 0.3 s apart
    fill = [subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(max(0, {start + lag} - "
                              "time.time()))\n" + RUN], cwd=work, env=_env(cache, stock, s, "float64"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for s, lag in ((0, 0.0), (3, random.uniform(0.0, 0.3)))]
    fill_crash = any(p.wait() != 0 for p in fill)
    later = [subprocess.run([sys.executable, "-c", RUN], check=False, cwd=work, env=_env(cache, stock, s, d),
                            capture_output=True).returncode
             for s in (0, 3) for d in ("float32", "float64")]
    return fill_crash, any(rc != 0 for rc in later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    random.seed(0)
    for stock in (True, False):
        crashed_fills = crashed_later = 0
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                (work / "kernels.py").write_text(GUFUNC + NJIT)
                fill, later = one_round(work, stock)
                crashed_fills += fill
                crashed_later += later
        name = "stock numba" if stock else "humdex.kernel_cache"
        print(f"{name:20s} rounds {args.rounds}: concurrent fill crashed {crashed_fills}, "
              f"cache left crashing later processes {crashed_later}", flush=True)


if __name__ == "__main__":
    main()
