"""Features: CREPE bin mapping, pseudo-activations, crop around the mean pitch, 180 -> 80 resize, windows, CQT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from humdex.frontend.contour import Contour
from humdex.frontend.pitch import CREPE_BINS, crepe_bin_to_midi, midi_to_crepe_bin
from humdex.learned.features import (
    CQT_BINS,
    FEATURE_BINS,
    M_LONG,
    M_SHORT,
    bin_resize_matrix,
    contour_to_activation,
    cqt_features,
    crepe_windows,
    crop_windows,
    gather_pooled,
    model_inputs,
    pseudo_activation,
)


def test_crepe_bins_match_torchcrepe_cents() -> None:
    # torchcrepe: bin b is 20 b + 1997.379 cents above 10 Hz; A4 = 440 Hz = 6551.318 cents
    assert np.isclose(midi_to_crepe_bin(69.0), (6551.3179 - 1997.3794) / 20, atol=1e-3)
    assert np.isclose(crepe_bin_to_midi(midi_to_crepe_bin(57.3)), 57.3)


def test_resize_matrix_golden() -> None:
    m = bin_resize_matrix(180, 80)
    assert m.shape == (180, 80)
    assert np.allclose(m.sum(axis=0), 1.0)  # each output bin averages 2.25 input bins
    assert np.allclose(m[:3, 0], [1 / 2.25, 1 / 2.25, 0.25 / 2.25])
    assert np.isclose(m[2, 1], 0.75 / 2.25)
    assert np.allclose(np.ones(180) @ m, 1.0)


def test_pseudo_activation_peaks_at_pitch_and_unvoiced_frames_are_empty() -> None:
    c = Contour(np.array([60.0] * 10 + [np.nan] * 5 + [72.4] * 10, np.float32), 0.01)
    act = contour_to_activation(c)
    assert act.shape == (25, CREPE_BINS) and act.dtype == np.float32
    assert act[0].argmax() == round(float(midi_to_crepe_bin(60.0)))
    assert np.all(act[10:15] == 0)
    assert abs(act[20].argmax() - float(midi_to_crepe_bin(72.4))) <= 0.5


def test_pseudo_activation_peak_follows_the_pitch_bin_by_bin() -> None:
    on_bins = crepe_bin_to_midi(np.arange(5, 355, dtype=np.float64))  # 5 bins = 1 semitone apart
    act = pseudo_activation(torch.from_numpy(on_bins)).numpy()
    assert np.array_equal(act.argmax(axis=1), np.arange(5, 355))
    assert np.allclose(act.max(axis=1), 1.0, atol=1e-6) and act.min() >= 0.0
    up = pseudo_activation(torch.from_numpy(on_bins + 1.0)).numpy()  # a semitone up = 5 bins up
    np.testing.assert_allclose(up[:-10, 5:], act[:-10, :-5], atol=1e-6)
    between = pseudo_activation(torch.tensor([crepe_bin_to_midi(100.5)], dtype=torch.float64)).numpy()[0]
    assert between[100] == pytest.approx(between[101]) and between[100] < 0.95  # halfway: two equal bins


def test_pseudo_activation_is_a_25_cent_gaussian() -> None:
    """25 cents = 1.25 bins of 20 cents: three bins reach half the peak (full width at half
    maximum 2.355 std = 59 cents), the curve is symmetric, and a wider std spreads it."""
    act = pseudo_activation(torch.tensor([crepe_bin_to_midi(180.0)], dtype=torch.float64)).numpy()[0]
    assert list(np.flatnonzero(act >= 0.5)) == [179, 180, 181]
    np.testing.assert_allclose(act[180 - 40 : 180], act[181 : 221][::-1], atol=1e-7)
    assert act[180 + 6] < 1e-4  # 120 cents out: under 5 std
    wide = pseudo_activation(torch.tensor([crepe_bin_to_midi(180.0)], dtype=torch.float64), std_cents=50.0)
    assert int((wide.numpy()[0] >= 0.5).sum()) == 5


def test_contour_at_other_hop_is_resampled_to_10ms() -> None:
    act = contour_to_activation(Contour(np.full(10, 65.0, np.float32), 0.032))
    assert act.shape == (32, CREPE_BINS)


def test_window_starts_and_shapes() -> None:
    assert list(M_SHORT.starts(300)) == [0]
    assert list(M_SHORT.starts(350)) == [0, 25, 50]
    assert list(M_LONG.starts(928)) == [0, 64, 128]
    assert list(M_SHORT.starts(10)) == [0]  # short clip: one zero-padded window
    act = contour_to_activation(Contour(np.full(1000, 62.0, np.float32), 0.01))
    x, starts_s = crepe_windows(act, M_SHORT)
    assert x.shape == (29, 80, 75) and np.allclose(starts_s[:3], [0, 0.25, 0.5])
    x_long, _ = crepe_windows(act, M_LONG)
    assert x_long.shape == (4, 80, 200)


def test_crop_centres_the_melody_so_transposition_is_invariant() -> None:
    rng = np.random.default_rng(0)
    midi = np.repeat(60 + rng.integers(-5, 6, 30), 10).astype(np.float32)
    a, _ = crepe_windows(contour_to_activation(Contour(midi, 0.01)), M_SHORT)
    b, _ = crepe_windows(contour_to_activation(Contour(midi + 7.0, 0.01)), M_SHORT)
    # 7 semitones = 35 bins: the crop follows the mean pitch, so only the sub-bin rounding remains
    assert np.abs(a - b).max() < 0.05 * a.max()


def test_gather_pooled_averages_four_frames_and_respects_bounds() -> None:
    bank = torch.arange(20, dtype=torch.float32)[:, None].repeat(1, 2)  # (20, 2), row value = index
    w = gather_pooled(bank, np.array([0, 8]), n_out=3, ends=np.array([8, 20]), begins=np.array([0, 8]))
    assert torch.allclose(w[0, :, 0], torch.tensor([1.5, 5.5, 0.0]))  # 3rd frame past end -> 0
    assert torch.allclose(w[1, :, 0], torch.tensor([9.5, 13.5, 17.5]))
    stretched = gather_pooled(bank, np.array([0]), n_out=2, stretch=np.array([2.0]))
    assert torch.allclose(stretched[0, :, 0], torch.tensor([1.5, 9.5]))  # second frame from 8


def test_crop_shift_moves_the_window() -> None:
    act = contour_to_activation(Contour(np.full(300, 60.0, np.float32), 0.01))
    win = gather_pooled(torch.from_numpy(act), np.array([0, 0]), 75)
    x = crop_windows(win, shift_bins=torch.tensor([0.0, 20.0]))
    # the melody sits mid-crop; shifting the crop up 20 bins (4 semitones) moves it down 20 * 80/180
    peak0, peak1 = x[0, :, 10].argmax().item(), x[1, :, 10].argmax().item()
    assert abs((peak0 - peak1) - 20 * 80 / 180) <= 1


def test_pooled_windows_equal_gather_pooled_including_the_clip_end() -> None:
    import torch

    from humdex.learned.features import gather_pooled, pooled_windows

    frames = np.random.default_rng(3).random((1003, 360)).astype(np.float32)
    starts = np.r_[M_SHORT.starts(len(frames)), 990]  # the last window runs past the end
    fast = pooled_windows(frames, starts, M_SHORT.feature_frames)
    ref = gather_pooled(torch.from_numpy(frames), starts, M_SHORT.feature_frames).numpy()
    assert fast.shape == ref.shape == (len(starts), M_SHORT.feature_frames, 360)
    assert np.allclose(fast, ref, atol=1e-4)
    assert np.all(fast[-1, 4:] == 0.0)  # frames past the clip read as zeros


def test_stretch_frames() -> None:
    from humdex.frontend.contour import stretch_frames

    x = np.arange(10)
    assert list(stretch_frames(x, 2.0)) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]
    assert list(stretch_frames(x, 0.5)) == [1, 3, 5, 7, 9]
    assert stretch_frames(np.ones((3, 4)), 0.1).shape == (1, 4)
    assert len(stretch_frames(x, 0.1, min_frames=2)) == 2


def test_cqt_features_peak_on_the_tone_bin_and_silence_is_zero() -> None:
    sr = 16000
    t = np.arange(3 * sr) / sr
    a3 = cqt_features(0.5 * np.sin(2 * np.pi * 220.0 * t).astype(np.float32), sr)
    assert a3.shape == (1 + len(t) // 160, CQT_BINS) and a3.dtype == np.float32
    mid = a3[100:200]  # away from the clip's edges
    assert np.all(mid.argmax(axis=1) == 33)  # A3 = 2 octaves + 9 semitones above C1
    assert a3.max() == pytest.approx(1.0) and a3.min() >= 0.0
    assert np.all(mid[:, :20] < 0.5)  # two octaves below: far under the peak
    assert not cqt_features(np.zeros(sr, np.float32), sr).any()
    at_8k = cqt_features(0.5 * np.sin(2 * np.pi * 220.0 * t[::2]).astype(np.float32), 8000)
    assert abs(len(at_8k) - len(a3)) <= 1 and np.all(at_8k[100:200].argmax(axis=1) == 33)


def test_cqt_chunks_join_seamlessly(monkeypatch) -> None:
    from humdex.learned import features

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16000 * 2).astype(np.float32)
    whole = cqt_features(audio, 16000)
    monkeypatch.setattr(features, "CQT_CHUNK_FRAMES", 37)
    chunked = cqt_features(audio, 16000)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


GOLDEN = Path(__file__).parent / "data" / "features_golden.npz"  # tests/data/make_golden.py


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return dict(data)


def test_pseudo_activations_match_the_golden_file(golden) -> None:
    got = pseudo_activation(torch.from_numpy(golden["pseudo_midi"])).numpy()
    np.testing.assert_allclose(got, golden["pseudo_activation"], rtol=1e-6, atol=1e-7)
    pv = contour_to_activation(Contour(golden["pv_midi"], 0.032))  # resampled to 10 ms
    np.testing.assert_allclose(pv, golden["pv_activation"], rtol=1e-6, atol=1e-7)


def test_crepe_windows_match_the_golden_file(golden) -> None:
    windows, starts_s = crepe_windows(contour_to_activation(Contour(golden["walk_midi"], 0.01)), M_SHORT)
    np.testing.assert_allclose(starts_s, golden["walk_starts_s"])
    np.testing.assert_allclose(windows, golden["walk_windows"], atol=1e-5)


def test_cqt_features_match_the_golden_file(golden) -> None:
    np.testing.assert_allclose(cqt_features(golden["tones"], 16000), golden["tones_cqt"], atol=1e-4)


def test_model_inputs_per_feature_and_cqt_pitch_shift() -> None:
    win = torch.zeros(2, 75, CQT_BINS)
    win[:, :, 40] = 1.0
    x = model_inputs(win, "cqt", shift_semitones=torch.tensor([2.0, -41.0]))
    assert x.shape == (2, CQT_BINS, 75)
    assert x[0].argmax(dim=0).eq(42).all() and x[0].sum() == 75  # moved up 2 bins
    assert x[1].sum() == 0  # moved below the lowest bin: zeros fill
    act = torch.zeros(1, 75, 360)
    act[:, :, 200] = 1.0
    assert model_inputs(act, "crepe").shape == (1, FEATURE_BINS, 75)
    with pytest.raises(ValueError):
        model_inputs(win, "mfcc")
