"""Training records for the melody net: TRAIN-split pool melodies rendered as records (a training
sound: TRAIN or WIDE) with the renderer's true lead pitch, one .npz per record (resumable:
existing files are kept).

Each file holds `audio16` (n,) int16 at 16 kHz (the mix as humdex hears it, production and codec
included) and `lead_midi` (frames,) float16 per 10 ms, NaN where the lead rests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from humdex.synth.score import Score

MIN_NOTES = 12
MIN_SECONDS = 10.0
COVER_SHARE = 1 / 3  # records rendered as covers (edited structure, another arrangement)
TRAINING_SOUNDS = ("train", "wide")  # never heldout (evaluation) or proxy (development)


def train_melodies(n_songs: int, seed: int, split: str = "train") -> list[tuple[str, Score]]:
    """[(id, Score)]: pool melodies of `split` with >= MIN_NOTES notes lasting >= MIN_SECONDS."""
    from humdex.training.melody_pool import load_pool

    pool = load_pool(split)
    out: list[tuple[str, Score]] = []
    for i in np.random.default_rng([seed, 7]).permutation(len(pool)):
        m = pool[int(i)]
        if len(m.onset_s) < MIN_NOTES or m.onset_s[-1] < MIN_SECONDS:
            continue
        out.append((f"{split[:2]}{int(i):05d}",
                    Score(np.asarray(m.onset_s), np.asarray(m.duration_s), np.asarray(m.pitch_midi))))
        if len(out) >= n_songs:
            break
    return out


def build_corpus(out: Path, n_songs: int, seed: int = 0, sound_name: str = "train") -> int:
    """Render n_songs training records into `out`; returns how many files `out` holds."""
    from tqdm import tqdm

    from humdex.errors import HumdexError
    from humdex.frontend.audio import SAMPLE_RATE
    from humdex.synth.records import render_record
    from humdex.synth.sounds import get_sound

    if sound_name not in TRAINING_SOUNDS:
        raise HumdexError(f"the melody net trains on {' or '.join(TRAINING_SOUNDS)} records, not {sound_name!r}")
    sound = get_sound(sound_name)

    out.mkdir(parents=True, exist_ok=True)
    for n, (song_id, score) in enumerate(tqdm(train_melodies(n_songs, seed), desc="records", unit="song")):
        path = out / f"{song_id}.npz"
        if path.is_file():
            continue
        rng = np.random.default_rng([seed, n, 11])
        kind = "cover" if rng.random() < COVER_SHARE else "original"
        rec = render_record(score, rng, sound, kind)
        assert rec.sample_rate == SAMPLE_RATE
        audio16 = np.clip(np.round(rec.audio * 32767.0), -32768, 32767).astype(np.int16)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, audio16=audio16, lead_midi=rec.f0_midi.astype(np.float16),
                 info=json.dumps(rec.info))
        tmp.replace(path)
    return len(list(out.glob("*.npz"))) - len(list(out.glob("*.tmp.npz")))
