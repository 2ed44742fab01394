"""Tests for the melody net (humdex.frontend.melody_net) and its training (humdex.training.melody_net)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.test_salience import RATE, band_mixture, tones

from humdex.errors import HumdexError, ModelError
from humdex.frontend import melody_net, pitch
from humdex.frontend.melody_net import MelodyNetConfig
from humdex.frontend.salience import midi_grid
from humdex.metrics import melody_accuracy
from humdex.training import melody_net as train_mn

CONFIG = MelodyNetConfig()
GRID = midi_grid(CONFIG.salience)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("HUMDEX_THREADS", "1")


def test_targets_are_a_gaussian_on_the_lead_or_no_lead_on_rests():
    lead = np.array([60.0, np.nan, 43.0, 30.0, 100.0, 60.1], np.float32)
    targets, weights = train_mn.lead_targets(lead, 8, CONFIG)
    assert targets.shape == (8, len(GRID) + 1)
    np.testing.assert_allclose(targets.sum(axis=1)[weights > 0], 1.0, atol=1e-5)
    assert GRID[np.argmax(targets[0, :-1])] == pytest.approx(60.0)
    assert targets[0, -1] == 0.0
    assert targets[1, -1] == 1.0 and targets[6, -1] == 1.0 and targets[7, -1] == 1.0  # rests, missing truth
    assert np.argmax(targets[2, :-1]) == 0
    np.testing.assert_array_equal(weights, [1, 1, 1, 0, 0, 1, 1, 1])  # below / above the grid: ignored
    assert not targets[3:5].any()
    assert GRID[np.argmax(targets[5, :-1])] == pytest.approx(60.0)  # 10 cents off: nearest 20-cent bin
    assert targets[5, np.argmax(targets[5, :-1]) + 1] > targets[5, np.argmax(targets[5, :-1]) - 1]


def test_the_input_stacks_each_harmonic_of_each_candidate_pitch():
    x = tones([60.0], 1.0, 1, 0.3)  # a pure tone: one spectral peak
    feats = melody_net.net_input(x, RATE, pitch.HOP_SAMPLES, CONFIG)
    assert feats.shape == (CONFIG.in_channels, pitch.n_frames(len(x)), len(GRID))
    assert feats.dtype == np.float32 and np.all(np.isfinite(feats)) and feats.min() >= 0.0
    mid = feats[:, 50]
    for c, h in enumerate(CONFIG.harmonics):
        expected = 60.0 - 12.0 * np.log2(h)  # the pitch whose h-th harmonic is the tone
        if GRID[0] <= expected <= GRID[-1]:
            assert GRID[np.argmax(mid[c])] == pytest.approx(expected, abs=0.21), h
    assert GRID[np.argmax(mid[-1])] == pytest.approx(60.0, abs=0.21)  # the salience channel


def test_decode_follows_the_likely_path_and_reports_rests():
    rng = np.random.default_rng(0)
    n_t = 300
    true_bin = np.repeat([50, 55, 60], 100)
    logits = rng.normal(0, 0.5, (n_t, len(GRID) + 1))
    logits[np.arange(n_t), true_bin] += 6.0
    logits[np.arange(n_t), true_bin + 1] += 5.0  # the truth lies between two bins
    logits[200:, -1] += 12.0  # the last 100 frames: no lead
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    f0_hz, periodicity = melody_net.decode(log_probs, CONFIG)
    midi = pitch.hz_to_midi(f0_hz)
    expected = GRID[true_bin] + 0.5 / CONFIG.salience.bins_per_semitone
    assert np.abs(midi[:200] - expected[:200]).max() < 0.1
    assert periodicity[:200].min() > 0.9 and periodicity[200:].max() < 0.1


def test_training_lowers_the_loss_and_resumes_from_its_checkpoint(tmp_path):
    """Two tiny synthetic records (a tone melody over a louder bass): the loss falls, and a second
    call continues from the first one's checkpoint."""
    audio, truth = band_mixture()
    feats, val = tmp_path / "features", tmp_path / "val"
    for folder in (feats, val):
        folder.mkdir()
        np.save(folder / "r0.npy", melody_net.net_input(audio, RATE, pitch.HOP_SAMPLES, CONFIG).astype(np.float16))
        np.save(folder / "r0.lead.npy", truth.astype(np.float32))
    config = MelodyNetConfig(channels=8)
    tc = train_mn.TrainConfig(steps=30, batch=2, crop_frames=128, lr=3e-3, checkpoint_every=15)
    curve = train_mn.train([feats], val, tmp_path / "run", config, tc, threads=1)
    first, last = curve["points"]
    assert last["step"] == 30 and last["train_loss"] < first["train_loss"]
    more = train_mn.train([feats], val, tmp_path / "run", config, train_mn.TrainConfig(**{**tc.__dict__, "steps": 45}),
                          threads=1)
    assert [p["step"] for p in more["points"]] == [15, 30, 45]
    _, loaded = melody_net.load(tmp_path / "run" / "best.pt")
    assert loaded == config
    saved = json.loads((tmp_path / "run" / "curve.json").read_text())
    assert saved["points"][-1]["step"] == 45


def test_regain_scales_a_channel_as_its_spectrum_would_be_scaled():
    """A channel's gain equals recomputing the input from a louder spectrum (golden: the input's
    own formula); 0 dB leaves the input as it was."""
    magnitude = np.random.default_rng(0).random((3, 5, 7)).astype(np.float32)
    level = 0.8
    x = melody_net._compressed(magnitude, level)
    gains_db = np.array([6.0, 0.0, -12.0])
    louder = melody_net._compressed(magnitude * (10 ** (gains_db / 20))[:, None, None], level)
    np.testing.assert_allclose(train_mn.regain(x, gains_db), louder, atol=1e-5)
    np.testing.assert_allclose(train_mn.regain(x, np.zeros(3)), x, atol=1e-6)


def test_augmented_training_reads_several_feature_folders(tmp_path):
    """Records from two folders, timbre and level augmentation on: training runs and its curve
    records the augmentation; the crops differ from unaugmented ones."""
    audio, truth = band_mixture()
    x = melody_net.net_input(audio, RATE, pitch.HOP_SAMPLES, CONFIG).astype(np.float16)
    folders = [tmp_path / "a", tmp_path / "b", tmp_path / "val"]
    for folder in folders:
        folder.mkdir()
        np.save(folder / "r0.npy", x)
        np.save(folder / "r0.lead.npy", truth.astype(np.float32))
    tc = train_mn.TrainConfig(steps=4, batch=2, crop_frames=64, checkpoint_every=4, timbre_db=6.0, level_db=3.0)
    curve = train_mn.train(folders[:2], folders[2], tmp_path / "run", MelodyNetConfig(channels=4), tc, threads=1)
    assert curve["records"] == 2 and curve["train_config"]["timbre_db"] == 6.0
    # fine-tuning starts from the given weights and keeps their config
    best = tmp_path / "run" / "best.pt"
    tuned = train_mn.train(folders[:1], folders[2], tmp_path / "tuned", MelodyNetConfig(channels=8),
                           train_mn.TrainConfig(steps=2, batch=2, crop_frames=64, lr=0.0, checkpoint_every=2),
                           threads=1, init=best)
    assert tuned["config"]["channels"] == 4 and tuned["init"] == str(best)
    start, _ = melody_net.load(best)
    after, _ = melody_net.load(tmp_path / "tuned" / "best.pt")
    for (name, a), b in zip(start.named_parameters(), after.parameters(), strict=True):  # lr 0: unchanged
        assert np.array_equal(a.detach().numpy(), b.detach().numpy()), name
    records = train_mn._load_records(folders[0])
    plain = train_mn._batch(records, np.random.default_rng(1), train_mn.TrainConfig(batch=2, crop_frames=64), CONFIG)
    augmented = train_mn._batch(records, np.random.default_rng(1), tc, CONFIG)
    # the first crop starts at the same frame in both (the augmentation draws after it)
    assert not np.allclose(plain[0][0], augmented[0][0]) and np.array_equal(plain[1][0], augmented[1][0])


def test_the_shipped_net_follows_a_melody_over_a_louder_bass():
    """Every note of the melody (a monophonic tracker follows the bass here: test_salience)."""
    audio, truth = band_mixture()
    inner = np.isfinite(truth) & (np.arange(len(truth)) % 40 >= 5)  # away from note changes
    contour = pitch.contour_from_track(pitch.track(audio, RATE, "melody-net"), pitch.VOICING["melody-net"])
    midi = contour.midi.astype(np.float64)
    scores = melody_accuracy(np.where(inner, truth, np.nan), midi)
    assert scores["pitch_accuracy"] > 0.85  # the misses: a few frames' lag after a note change
    for start in range(0, len(truth) - 40, 40):
        assert np.nanmedian(midi[start + 5: start + 40]) == pytest.approx(truth[start + 10], abs=0.1)


def test_missing_or_corrupt_weights_are_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        melody_net.load(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="corrupt"):
        melody_net.load(bad)


def test_a_song_in_chunks_gives_the_log_probabilities_of_one_pass(monkeypatch):
    audio, _ = band_mixture()
    model, config = melody_net.load_shipped()
    features = melody_net.HarmonicStack(audio, RATE, pitch.HOP_SAMPLES, config)
    whole = melody_net.log_probs(model, features)
    monkeypatch.setattr(melody_net, "CHUNK_FRAMES", 100)  # 5 chunks and a remainder
    chunked = melody_net.log_probs(model, features)
    assert whole.shape == (pitch.n_frames(len(audio)), len(GRID) + 1)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)
    np.testing.assert_array_equal(features[:, 100:200], melody_net.net_input(audio, RATE, pitch.HOP_SAMPLES, config)[:, 100:200])


@pytest.mark.parametrize("sound", ["heldout", "proxy"])
def test_the_training_corpus_refuses_evaluation_and_development_sound(tmp_path, sound):
    from humdex.training.melody_net_corpus import build_corpus

    with pytest.raises(HumdexError, match="trains on train or wide"):
        build_corpus(tmp_path / "records", 1, sound_name=sound)
    assert not (tmp_path / "records").exists()
