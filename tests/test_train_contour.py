"""`humdex train --feature contour`: the encoder learns from the melodies humdex's own front end tracks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humdex.frontend.contour import Contour
from humdex.learned.tones import contour_tones

HOP_S = 0.01


def melody_contour(pitches: list[int], note_s: float, gap_s: float = 0.05) -> Contour:
    frames = []
    for p in pitches:
        frames += [float(p)] * round((note_s - gap_s) / HOP_S) + [np.nan] * round(gap_s / HOP_S)
    return Contour(np.array(frames, np.float32), HOP_S)


def song_audio(lead: Contour, rng: np.random.Generator) -> np.ndarray:
    """The lead over a quieter sustained bass two octaves down (a band the song tracker must ignore)."""
    bass = Contour(np.full(len(lead.midi), float(np.nanmin(lead.midi)) - 24, np.float32), HOP_S)
    mix = contour_tones(lead) + 0.3 * contour_tones(bass) + 0.003 * rng.standard_normal(len(contour_tones(lead)))
    return mix.astype(np.float32)


@pytest.fixture(scope="module")
def chad_folder(tmp_path_factory):
    """Four melodies as CHAD fragments: an original (lead + bass) and two hums (another key and tempo)."""
    from humdex.training.chad import FragmentRecord, write_metadata, write_wav

    root = tmp_path_factory.mktemp("chad")
    rng = np.random.default_rng(7)
    records, truth = [], {}
    for gi in range(4):
        pitches = (64 + np.cumsum(rng.integers(-3, 4, 10)).clip(-7, 7)).tolist()
        for ri, (shift, note_s) in enumerate([(0, 0.4), (-5, 0.5), (3, 0.35)]):
            lead = melody_contour([p + shift for p in pitches], note_s)
            audio = song_audio(lead, rng) if ri == 0 else contour_tones(lead)
            kind = "original" if ri == 0 else "humming"
            rec = FragmentRecord(f"g{gi}", "0", f"v{ri}", kind, (0.0, lead.duration_s),
                                 kind="" if ri == 0 else "hum", melody_id=f"m{gi}",
                                 split="validation" if gi == 0 else "train")
            write_wav(rec.audio_path(root), audio, 16000)
            records.append(rec)
            truth[rec.id, gi] = lead.midi
    write_metadata(root / "metadata.csv", records)
    return root, truth


def test_contour_features_are_what_the_front_end_tracks_song_and_hum(chad_folder) -> None:
    from humdex.training.data import load_chad_groups, rendition_frames

    root, truth = chad_folder
    groups = load_chad_groups(root, "train", progress=False, feature="contour", workers=2)
    assert len(groups) == 3 and all(len(g.renditions) == 3 for g in groups)
    for gi, g in zip(range(1, 4), groups, strict=True):
        for ri, rd in enumerate(g.renditions):
            assert rd.activation.ndim == 1 and rd.activation.dtype == np.float32
            true = truth[f"v{ri}", gi]
            n = min(len(true), len(rd.activation))
            both = np.isfinite(true[:n]) & np.isfinite(rd.activation[:n])
            assert both.sum() > 0.6 * np.isfinite(true).sum()  # the lead is found, not the bass
            assert np.median(np.abs(rd.activation[:n][both] - true[:n][both])) < 0.5
    frames = rendition_frames(groups[0].renditions[0])
    assert frames.shape == (len(groups[0].renditions[0].activation), 360) and frames.max() == pytest.approx(1.0, 0.01)
    # the cache is reused: a second load reads the same contours
    again = load_chad_groups(root, "train", progress=False, feature="contour")
    assert np.array_equal(again[0].renditions[1].activation, groups[0].renditions[1].activation, equal_nan=True)


def test_train_on_contours_from_an_initial_model(chad_folder, tmp_path) -> None:
    from humdex.cli import main
    from humdex.learned.model import Encoder, ModelConfig, save_checkpoint

    root, _ = chad_folder
    init = tmp_path / "init.pt"
    save_checkpoint(init, Encoder(ModelConfig(base_channels=4)))
    out = tmp_path / "run"
    args = ["train", str(root), "--feature", "contour", "--init", str(init), "--out", str(out), "--steps", "2",
            "--k-groups", "3", "--per-group", "2", "--eval-every", "2", "--device", "cpu"]
    assert main(args) == 0
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert ckpt["config"]["feature"] == "crepe" and ckpt["config"]["base_channels"] == 4  # the init's width
    assert [m for m in ckpt["metrics"] if "val_top1" in m][-1]["val_n_queries"] == 2  # the validation melody's hums
    cqt = tmp_path / "cqt.pt"
    save_checkpoint(cqt, Encoder(ModelConfig(feature="cqt", n_bins=84, base_channels=4)))
    assert main([*args[:4], "--init", str(cqt), *args[6:]]) != 0  # a CQT model cannot learn from contours

