"""Aligned fragments: where in a cover an original fragment is sung, from fingerprint sequences.

The CHAD paper's "aligned fragments extraction": a fragment of the original (its fingerprint
sequence, one 128-d unit vector per window hop) slides over the whole cover's sequence; at every
offset the score is the mean cosine of the windows that meet. Covers sing at their own tempo, so
the fragment is stretched to a few tempo ratios first (cover seconds per original second), and
each fragment is aligned on its own: a cover that changes tempo or repeats/skips phrases still
gets each fragment right. All offsets of one ratio come from one FFT cross-correlation summed
over the fingerprint dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# cover seconds per original second: a geometric grid over 0.7-1.4x (a cover singer's tempo
# against the original's: each draws 0.85-1.2x of the score tempo), refined around the best
TEMPO_RATIOS = tuple(float(x) for x in np.geomspace(0.7, 1.4, 9))  # 9% apart
REFINE_STEPS = (0.955, 0.97, 0.985, 1.0, 1.015, 1.03, 1.045)  # 1.5 % apart, spanning the grid gap
MIN_OVERLAP = 0.5  # offsets where less than this share of the fragment lies inside the cover are not tried


@dataclass(frozen=True)
class Alignment:
    """The best-aligned stretch of a cover for one original fragment.

    score: mean cosine of the aligned fingerprints, clipped to [0, 1] (CHAD's `correlation`);
    start_s, end_s: the stretch in the cover's seconds (sub-hop precision);
    ratio: cover seconds per original second;
    margin: the score minus the median score of the fragment at every offset of the cover (at
    the best ratio): how much the peak stands out, which, unlike the raw score, does not grow
    when a poorly trained model makes all fingerprints alike.
    """

    score: float
    start_s: float
    end_s: float
    ratio: float
    margin: float = 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return self.start_s, self.end_s


@dataclass(frozen=True)
class AlignConfig:
    hop_s: float = 0.25  # fingerprint hop of both sequences (the model's)
    window_s: float = 3.0  # fingerprint window length (the model's)
    ratios: tuple[float, ...] = TEMPO_RATIOS
    refine: tuple[float, ...] = REFINE_STEPS
    phases: tuple[float, ...] = (0.0, 0.5)  # sub-hop shifts of the stretched fragment


def stretch_sequence(seq: np.ndarray, ratio: float, phase: float = 0.0) -> np.ndarray:
    """(n, D) unit vectors at one hop -> (floor((n - 1) * ratio) + 1, D): the same sequence played
    `ratio` times slower; element j is the input at j / ratio exactly (linear interpolation
    between neighbours, renormalised), so the ratio is not rounded to the sequence's length.
    phase in [0, 1): element j is the input at (j + phase) / ratio (a sub-hop shift)."""
    n = len(seq)
    if n <= 1 or (ratio == 1.0 and phase == 0.0):
        return seq
    m = int(np.floor((n - 1) * ratio - phase + 1e-9)) + 1
    pos = np.minimum((np.arange(m) + phase) / ratio, n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None].astype(np.float32)
    out = (1.0 - w) * seq[lo] + w * seq[hi]
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)).astype(np.float32)


class CoverSpectrum:
    """A cover's fingerprint sequence, Fourier-transformed once for every fragment aligned to it."""

    def __init__(self, cover: np.ndarray, max_fragment: int) -> None:
        self.m = len(cover)
        self.max_fragment = max_fragment
        self.size = _fft_size(self.m + 2 * max_fragment)
        padded = np.zeros((self.size, cover.shape[1]), np.float32)
        padded[max_fragment:max_fragment + self.m] = cover  # room for negative offsets
        self.spectrum = np.fft.rfft(padded, axis=0)

    def correlation(self, fragment: np.ndarray) -> np.ndarray:
        """c[k] = sum_j fragment[j] . cover[k - max_fragment + j] for k in [0, m + max_fragment)."""
        q = np.zeros((self.size, fragment.shape[1]), np.float32)
        q[:len(fragment)] = fragment
        spec = (self.spectrum * np.conj(np.fft.rfft(q, axis=0))).sum(axis=1)
        return np.fft.irfft(spec, self.size)[: self.m + self.max_fragment]


def _fft_size(n: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return size


def _best_offset(spectrum: CoverSpectrum, fragment: np.ndarray) -> tuple[float, float, float]:
    """(mean cosine, fractional offset in hops, median mean cosine over all offsets) of the
    fragment's best placement in the cover."""
    n = len(fragment)
    corr = spectrum.correlation(fragment) / n
    offsets = np.arange(len(corr)) - spectrum.max_fragment
    inside = np.minimum(offsets + n, spectrum.m) - np.maximum(offsets, 0)
    valid = inside >= MIN_OVERLAP * n
    if not valid.any():
        return 0.0, 0.0, 0.0
    scores = np.where(valid, corr, -np.inf)
    background = float(np.median(corr[valid]))
    k = int(np.argmax(scores))
    frac = 0.0
    if 0 < k < len(scores) - 1 and np.isfinite(scores[k - 1]) and np.isfinite(scores[k + 1]):
        left, mid, right = scores[k - 1], scores[k], scores[k + 1]
        curve = left - 2 * mid + right
        if curve < 0:
            frac = float(np.clip(0.5 * (left - right) / curve, -0.5, 0.5))
    return float(scores[k]), float(offsets[k] + frac), background


def align_fragment(fragment: np.ndarray, cover: np.ndarray | CoverSpectrum,
                   config: AlignConfig = AlignConfig()) -> Alignment:
    """Best placement of an original fragment's (n, D) fingerprints inside a cover's (m, D).

    The fragment's audio spans (n - 1) * hop + window seconds from its first window's start.
    Tries every offset at config.ratios, then refines the best ratio by config.refine; the
    cover stretch is the fragment's span mapped through the best (offset, ratio), windows
    matched at their centres.
    """
    n = len(fragment)
    max_n = max_fragment_windows(n, config)
    spectrum = cover if isinstance(cover, CoverSpectrum) else CoverSpectrum(cover, max_n)
    if n == 0 or spectrum.m == 0:
        return Alignment(0.0, 0.0, 0.0, 1.0)
    if max_n > spectrum.max_fragment:
        raise ValueError("CoverSpectrum built for shorter fragments")
    best = (-np.inf, 0.0, 1.0, 0.0)

    def attempt(ratio: float) -> None:
        nonlocal best
        for phase in config.phases:
            score, offset, background = _best_offset(spectrum, stretch_sequence(fragment, ratio, phase))
            if score > best[0]:  # the fragment's first window sits `phase` hops before element 0
                best = (score, offset - phase, ratio, background)

    for ratio in config.ratios:
        attempt(ratio)
    coarse = best[2]
    for step in config.refine:
        if step != 1.0:
            attempt(coarse * step)
    score, offset, ratio, background = best
    span_s = (n - 1) * config.hop_s + config.window_s
    # window j of the stretched fragment (original window j / ratio) starts at (offset + j) hops;
    # centres meet, so the fragment's start sits half a window's stretch before
    start = offset * config.hop_s + 0.5 * config.window_s * (1.0 - ratio)
    return Alignment(float(np.clip(score, 0.0, 1.0)), float(start), float(start + span_s * ratio),
                     float(ratio), float(score - background))


def max_fragment_windows(n_windows: int, config: AlignConfig = AlignConfig()) -> int:
    """Windows of the longest stretched version of an n-window fragment (CoverSpectrum's bound)."""
    return int(np.floor((n_windows - 1) * max(config.ratios) * max(config.refine) + 1e-9)) + 1
