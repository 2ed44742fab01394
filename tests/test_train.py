"""Training: lr schedule, K-group batches, augmentations, the loop end to end, `humdex train` on a CHAD folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from humdex.frontend.contour import Contour
from humdex.learned.features import M_SHORT, contour_to_activation, gather_pooled
from humdex.learned.model import ModelConfig, load_model
from humdex.training.data import (
    NO_AUGMENT,
    AugmentConfig,
    Bank,
    TrainGroup,
    TrainRendition,
    augment,
    passage_to_rendition_s,
    sample_batch,
)
from humdex.training.train import TrainConfig, export_model, lr_at, retrieval_metrics, train


def rendition(pitches, beats, tempo: float, transpose: float, rng, kind: str, jitter: float = 0.0):
    """A melody performed at `tempo` (x score speed), as a pseudo-activation with its time map."""
    frames = []
    for p, b in zip(pitches, beats):
        frames += [p + transpose + rng.normal(0, jitter)] * max(1, round(b * 0.25 / tempo / 0.01))
    score_s = float(np.sum(beats) * 0.25)
    tm = np.array([[0.0, 0.0], [len(frames) * 0.01, score_s]])
    act = contour_to_activation(Contour(np.array(frames, np.float32), 0.01))
    return TrainRendition(act.astype(np.float16), tm, kind)


def make_groups(n: int, seed: int, n_notes: int = 24) -> list[TrainGroup]:
    rng = np.random.default_rng(seed)
    groups = []
    for i in range(n):
        pitches = 62 + np.cumsum(rng.integers(-4, 5, n_notes)).clip(-9, 9)
        beats = rng.choice([1, 2, 2, 4], n_notes)
        rds = [rendition(pitches, beats, 1.0, 0.0, rng, "original")]
        rds += [rendition(pitches, beats, rng.uniform(0.85, 1.2), float(rng.integers(-5, 6)), rng,
                          "hum", 0.15) for _ in range(2)]
        groups.append(TrainGroup(f"melody{seed}_{i}", tuple(rds)))
    return groups


def test_lr_schedule_warms_up_then_decays() -> None:
    assert lr_at(0.0, 1.0, 0.1) == 0.0
    assert np.isclose(lr_at(0.05, 1.0, 0.1), 0.5)
    assert np.isclose(lr_at(0.1, 1.0, 0.1), 1.0)
    assert np.isclose(lr_at(0.55, 1.0, 0.1), 0.5)
    assert np.isclose(lr_at(1.0, 1.0, 0.1), 0.0, atol=1e-12)


def test_time_map_inversion_handles_jumps() -> None:
    rng = np.random.default_rng(0)
    tm = np.array([[0.0, 0.0], [2.0, 4.0], [2.0, 2.0], [4.0, 6.0]])  # a repeated phrase at 2 s
    assert passage_to_rendition_s(tm, 1.0, rng) == 0.5
    assert {passage_to_rendition_s(tm, 3.0, np.random.default_rng(s)) for s in range(20)} == {1.5, 2.5}
    assert passage_to_rendition_s(tm, 9.0, rng) is None


def test_batches_hold_aligned_windows_of_k_distinct_melodies() -> None:
    groups = make_groups(6, seed=1)
    x, labels = sample_batch(Bank(groups), M_SHORT, k_groups=4, per_group=3,
                             rng=np.random.default_rng(0), aug=NO_AUGMENT)
    assert x.shape == (12, 80, 75) and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    flat = torch.nn.functional.normalize(x.flatten(1), dim=1)
    sim = flat @ flat.T
    same = labels[:, None] == labels[None, :]
    # renditions of one passage moment (other key, tempo) look alike; other melodies don't
    assert sim[same].mean() > sim[~same].mean() + 0.2


def test_augment_keeps_shape_and_range() -> None:
    x = torch.rand(16, 80, 75)
    for aug in (AugmentConfig(p_splice=1.0, p_mix=0.0, p_noise=0.0),
                AugmentConfig(p_splice=0.0, p_mix=1.0, p_noise=1.0)):
        y = augment(x, np.random.default_rng(0), aug)
        assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        assert not torch.equal(x, y)
        assert (y == 0).any() == (aug.p_splice == 1.0)  # SpliceOut masks whole frames


@pytest.mark.slow
def test_tiny_model_trained_here_finds_its_training_fragments(tmp_path) -> None:
    groups = make_groups(10, seed=2, n_notes=16)
    cfg = TrainConfig(model=ModelConfig(base_channels=4), k_groups=6, per_group=3, max_steps=25,
                      lr=3e-3, eval_every=1000)
    ckpt = train(groups, [], cfg, tmp_path / "run", log=lambda m: None)
    saved = torch.load(ckpt, weights_only=True)
    losses = [m["loss"] for m in saved["metrics"] if "loss" in m]
    assert saved["step"] == 25 and np.mean(losses[-10:]) < np.mean(losses[:10])
    model = load_model(export_model(ckpt, tmp_path / "model.pt"))
    found = retrieval_metrics(model, groups)
    assert found["n_queries"] == 20 and found["top1"] >= 0.9 and found["top10"] == 1.0
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert json.loads((tmp_path / "run" / "config.json").read_text())["max_steps"] == 25


def write_chad(root, groups: list[TrainGroup]) -> None:
    """A CHAD-layout folder whose activations sit in the cache (no audio decoding or CREPE needed)."""
    from humdex.training.chad import FragmentRecord, write_metadata, write_wav

    cache = root / ".humdex_cache"
    cache.mkdir(parents=True)
    records = []
    for gi, g in enumerate(groups):
        for ri, rd in enumerate(g.renditions):
            audio_type = "original" if ri == 0 else "humming"
            rec = FragmentRecord(f"g{gi}", "0", f"v{ri}", audio_type, (0.0, rd.duration_s),
                                 kind="" if ri == 0 else "hum", melody_id=g.melody_id,
                                 split="validation" if gi < 2 else "train")
            records.append(rec)
            write_wav(rec.audio_path(root), np.zeros(160, np.float32), 16000)
            np.save(cache / f"g{gi}__0__v{ri}.npy", rd.activation)
    write_metadata(root / "metadata.csv", records)


def test_humdex_train_cli_trains_resumes_and_exports(tmp_path) -> None:
    from humdex.cli import main

    write_chad(tmp_path / "chad", make_groups(6, seed=3, n_notes=12))
    args = ["train", str(tmp_path / "chad"), "--out", str(tmp_path / "run"), "--width", "4",
            "--steps", "2", "--k-groups", "3", "--per-group", "2", "--eval-every", "2",
            "--device", "cpu"]
    assert main(args) == 0
    assert main([*args[:-4], "--steps", "3", "--resume", "--export", str(tmp_path / "m.pt"),
                 "--device", "cpu"]) == 0
    ckpt = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert ckpt["step"] == 3 and any("val_top1" in m for m in ckpt["metrics"])
    assert load_model(tmp_path / "m.pt").config.base_channels == 4
    # the recipe that trained it travels with the checkpoint and the shipped model
    recipe = torch.load(tmp_path / "m.pt", weights_only=True)["train_config"]["recipe"]
    assert recipe.startswith("humdex train ") and "--resume" in recipe and "--steps 3" in recipe
    assert ckpt["train_config"]["recipe"] == recipe
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2


def test_bank_keeps_pitch_contours_and_reads_them_as_pseudo_activations() -> None:
    """A bank of contours holds 1 float a frame; the windows it gives (stretched, clipped at its
    clips' starts and ends) are those of the product's pseudo-activation of the contour."""
    rng = np.random.default_rng(4)
    midi = np.where(rng.random(900) < 0.2, np.nan, 60 + rng.normal(0, 3, 900)).astype(np.float32)
    as_contour = TrainGroup("m", (TrainRendition(midi, np.array([[0.0, 0.0], [9.0, 9.0]]), "original"),))
    bank = Bank([as_contour])
    assert bank.frames.shape == (900,)
    want = torch.from_numpy(contour_to_activation(Contour(midi, 0.01)))
    starts, ends, begins = np.array([-5, 100, 700]), np.array([400, 400, 900]), np.array([0, 0, 400])
    stretch = np.array([1.0, 1.2, 0.8])
    got = gather_pooled(bank.frames, starts, 75, ends=ends, begins=begins, stretch=stretch)
    assert got.shape == (3, 75, 360) and float(got.abs().sum()) > 0
    torch.testing.assert_close(got, gather_pooled(want, starts, 75, ends=ends, begins=begins, stretch=stretch))


def tone_melody(pitches, note_s: float, sr: int = 16000) -> np.ndarray:
    """A melody as harmonic tones (a stand-in for a rendered song or hum)."""
    t = np.arange(round(note_s * sr)) / sr
    notes = [sum(np.sin(2 * np.pi * k * 440.0 * 2 ** ((p - 69) / 12) * t) / k for k in (1, 2, 3))
             for p in pitches]
    return (0.2 * np.concatenate(notes)).astype(np.float32)


def test_humdex_train_cli_trains_a_cqt_model_from_chad_audio(tmp_path) -> None:
    from humdex.cli import main
    from humdex.training.chad import FragmentRecord, write_metadata, write_wav

    root, rng, records = tmp_path / "chad", np.random.default_rng(5), []
    for gi in range(5):
        pitches = 60 + np.cumsum(rng.integers(-3, 4, 10))
        for ri, (note_s, shift) in enumerate([(0.4, 0), (0.45, 2), (0.35, -3)]):
            audio = tone_melody(pitches + shift, note_s)
            rec = FragmentRecord(f"g{gi}", "0", f"v{ri}", "original" if ri == 0 else "humming",
                                 (0.0, len(audio) / 16000), kind="" if ri == 0 else "hum",
                                 melody_id=f"m{gi}", split="validation" if gi < 2 else "train")
            write_wav(rec.audio_path(root), audio, 16000)
            records.append(rec)
    write_metadata(root / "metadata.csv", records)
    args = ["train", str(root), "--feature", "cqt", "--out", str(tmp_path / "run"), "--width", "4",
            "--steps", "2", "--k-groups", "3", "--per-group", "2", "--eval-every", "2",
            "--device", "cpu", "--export", str(tmp_path / "cqt.pt")]
    assert main(args) == 0
    cached = sorted((root / ".humdex_cache").glob("*__cqt.npy"))
    assert len(cached) == 15 and np.load(cached[0]).shape[1] == 84
    model = load_model(tmp_path / "cqt.pt")
    assert (model.config.feature, model.config.n_bins) == ("cqt", 84)
    ckpt = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert any(m.get("val_n_queries") == 4 for m in ckpt["metrics"])


def test_chad_hummings_alone_train_and_validate_hum_against_hum(tmp_path) -> None:
    """CHAD's hummings subset without its originals: a fragment hummed by 2+ people is a group,
    and validation asks each melody's later hums to find its first one."""
    from humdex.cli import main
    from humdex.training.chad import FragmentRecord, read_metadata, write_metadata
    from humdex.training.data import load_chad_groups

    groups = make_groups(6, seed=5, n_notes=12)
    write_chad(tmp_path / "chad", groups)
    rows = read_metadata(tmp_path / "chad" / "metadata.csv")
    hums = [r for r in rows if r.audio_type == "humming"]
    lone = FragmentRecord("g9", "0", "v0", "humming", (0.0, 4.0), kind="hum", melody_id="solo", split="train")
    np.save(tmp_path / "chad" / ".humdex_cache" / "g9__0__v0.npy", groups[0].renditions[1].activation)
    write_metadata(tmp_path / "chad" / "metadata.csv", [*hums, lone])  # originals dropped
    train = load_chad_groups(tmp_path / "chad", "train", progress=False)
    val = load_chad_groups(tmp_path / "chad", "validation", progress=False)
    per_group = {g.melody_id: len(g.renditions) for g in [*train, *val]}
    assert per_group == {g.melody_id: len(g.renditions) - 1 for g in groups}  # the lone hum: no group
    assert all(rd.kind == "hum" for g in train for rd in g.renditions)
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "chad"), "--out", str(out), "--width", "4", "--steps", "2",
                 "--k-groups", "3", "--per-group", "2", "--eval-every", "2", "--device", "cpu"]) == 0
    val_rows = [m for m in torch.load(out / "ckpt.pt", weights_only=True)["metrics"] if "val_top1" in m]
    n_hums = sum(len(g.renditions) for g in val)
    assert val_rows and val_rows[-1]["val_n_queries"] == n_hums - len(val)  # all but each first hum
