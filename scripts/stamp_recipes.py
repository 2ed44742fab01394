"""Write into each shipped checkpoint the recipe that produced it (train_config.recipe_steps).

Each step is a command and the commit it ran at: "HEAD" where the command runs as written at
today's source (tests/test_model.py parses every such step with the script's own argument
parser), or the commit of a script that has since changed, to be run from a checkout of that
commit (`git worktree add /tmp/r COMMIT`). Weights and int8 calibrations are not touched; the
files' sha256 change (update tests/test_model.py's SHIPPED_SHA256 with them).

    python scripts/stamp_recipes.py
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from humdex.learned.model import read_checkpoint, write_checkpoint
from humdex.learned.shipped import default_model_path

ASSETS = "src/humdex/assets"
CALIBRATION = "python scripts/calibrate_int8.py --model {name}"

# (commit, command, note) per step, oldest first; BENCHMARKS.md tells each step's measurements
RECIPES: dict[str, list[tuple[str, str, str]]] = {
    "short": [
        ("f0b9c0c", ("python3 scripts/train_gpu.py --out OUT --pool .carry/pool.npz --render-s 1000 "
                    "--train-s 60 60 --workers 15 --width 32 --k-groups 128 --per-group 4 --val-melodies 40 "
                    "--max-melodies 250 --passes 1 --eval-every 100000"),
         ("one H100; OUT/encoder_crepe_short.pt is the GPU model (sha256 3f176922...); HEAD's "
         "train_gpu.py is a different, later trainer")),
        ("c7ce1d4", ("python scripts/train_cpu_pseudo.py --window short --init OUT/encoder_crepe_short.pt "
                    f"--minutes 13 --melodies 250 --performances 3 --k-groups 32 --lr 3e-4 --out runs/short_ft "
                    f"--export {ASSETS}/encoder_crepe_short.pt"),
         ("HUMDEX_THREADS=1, one CPU core; --init was the GPU model; then calibrated for int8: the M_short "
          "shipped until the step below (sha256 3ae80c8c...)")),
        ("bb20bd1", ("humdex synth corpus --out data/records_train --hours 25.5 --split train --songs records "
                    "--sound train --workers 2 --full-songs none"),
         "the records corpus: 604 TRAIN-split melodies as fragment groups (BENCHMARKS.md, 'Training on records')"),
        ("bb20bd1", ("humdex synth corpus --out data/records_val --hours 3 --split validation --songs records "
                    "--sound train --workers 2 --full-songs none"), "its validation split"),
        ("HEAD", ("python benchmarks/selftrain_records.py render --out data/st_records/covers --groups 80 "
                 "--exclude data/records_train"),
         "cover groups for the rounds' mining; they do not reach M0's weights"),
        ("HEAD", ("humdex selftrain data/records_train data/records_val --groups data/st_records/covers/groups.csv "
                 "--out data/st_records/rounds --feature contour --from short --rounds 2 --steps 300 --eval-every 150 "
                 "--val-queries 200 --lr 3e-4 --truth data/st_records/covers/songs.csv"),
         ("OMP_NUM_THREADS=1, one CPU core; --from short was the M_short of the step above; this model is M0, "
          "round0/model/ckpt.pt: the hums and originals of the records corpus, no covers (the later rounds "
          "do not change it)")),
        ("HEAD", ("python benchmarks/selftrain_records.py export --ckpt data/st_records/rounds/round0/model/ckpt.pt "
                 f"--out {ASSETS}/encoder_crepe_short.pt"), "float16 weights"),
        ("HEAD", CALIBRATION.format(name="short"), "int8 activation ranges from pool training melodies"),
    ],
    "long": [
        ("HEAD", ("python scripts/train_cpu_pseudo.py --window long --init short --minutes 75 --melodies 250 "
                 "--performances 3 --k-groups 32 --lr 3e-4 --eval-every 250 --out runs/long_cpu "
                 f"--export {ASSETS}/encoder_crepe_long.pt"),
         ("HUMDEX_THREADS=1, one CPU core, from a frozen copy of the source tree; --init short was the "
         "fine-tuned M_short (sha256 78ea37aa...), before its int8 calibration")),
        ("HEAD", CALIBRATION.format(name="long"), "int8 activation ranges from pool training melodies"),
    ],
    "short16": [
        ("HEAD", ("python scripts/distill_cpu.py --teacher short --width 16 --minutes 45 --melodies 200 "
                 f"--out runs/distill16 --export {ASSETS}/encoder_crepe_short16.pt"),
         "OMP_NUM_THREADS=1, one CPU core; the teacher was the fine-tuned M_short (sha256 78ea37aa...)"),
        ("HEAD", CALIBRATION.format(name="short16"), "int8 activation ranges from pool training melodies"),
    ],
    "cqt": [
        ("HEAD", "humdex synth corpus --hours 20 --split train --seed 0 --workers 2 --out data/chad_synth",
         ("the synthetic CHAD corpus (BENCHMARKS.md, issue 3), rendered when the pool held 9016 tunes: "
         "HEAD's pool (10363) draws partly other melodies")),
        ("HEAD", "humdex synth corpus --hours 1 --split validation --seed 0 --workers 2 --out data/chad_synth",
         "its validation split"),
        ("HEAD", ("humdex train data/chad_synth --feature cqt --width 32 --out runs/cqt_cpu --minutes 70 "
                 f"--k-groups 24 --lr 2e-3 --eval-every 200 --device cpu --export {ASSETS}/encoder_cqt_short.pt"),
         "OMP_NUM_THREADS=1, one CPU core"),
        ("HEAD", CALIBRATION.format(name="cqt") + " --chad data/chad_synth",
         "int8 activation ranges from the corpus's training split"),
    ],
}


def recipe_steps(name: str) -> list[dict[str, str]]:
    return [{"commit": commit, "command": command, "note": note} for commit, command, note in RECIPES[name]]


def main() -> int:
    for name in RECIPES:
        path = default_model_path(name)
        ckpt = read_checkpoint(path)
        steps = recipe_steps(name)
        train_config = dict(ckpt.get("train_config") or {})
        train_config["recipe"] = " && ".join(
            (s["command"] if s["commit"] == "HEAD" else f"(at {s['commit']}) {s['command']}") for s in steps)
        train_config["recipe_steps"] = steps
        ckpt["train_config"] = train_config
        write_checkpoint(path, ckpt)
        print(f"{name}: {len(steps)} steps -> {path.name}")
        for s in steps:
            print(f"  [{s['commit']}] {shlex.split(s['command'])[1] if s['command'].startswith('python') else s['command'][:40]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
