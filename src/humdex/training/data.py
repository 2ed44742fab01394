"""Training data: groups of aligned renditions, the K-group batch sampler and feature-level augmentations.

A TrainGroup is one melody passage rendered several ways (original song, covers, hums,
whistles), each as a CREPE activation with a time map to a shared passage clock. A batch holds
K groups; from each, `per_group` renditions contribute a window at the same passage moment.
Augmentations (the paper's list) act on activation windows, where they amount to simple ops.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from humdex.frontend.audio import SAMPLE_RATE
from humdex.learned.features import (
    CREPE_HOP_S,
    WindowSpec,
    gather_pooled,
    model_inputs,
)


@dataclass(frozen=True, eq=False)
class TrainRendition:
    """activation: (T, B) float16 features at 10 ms (360-bin CREPE activation or 84-bin CQT), or
    (T,) MIDI pitch per 10 ms frame (NaN unvoiced) that Bank expands to a pseudo-activation;
    time_map: (n, 2) float (rendition_s, passage_s) breakpoints."""

    activation: np.ndarray
    time_map: np.ndarray
    kind: str = "humming"  # original | cover | humming

    @property
    def duration_s(self) -> float:
        return len(self.activation) * CREPE_HOP_S


@dataclass(frozen=True, eq=False)
class TrainGroup:
    melody_id: str
    renditions: tuple[TrainRendition, ...]


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the paper's augmentations (applied per window)."""

    pitch_shift_st: float = 4.0  # crop window moved by up to +-4 semitones
    p_pitch: float = 0.5
    stretch: tuple[float, float] = (0.8, 1.25)
    p_stretch: float = 0.5
    splice_max_frac: float = 0.15  # SpliceOut: up to 2 masked spans, each up to this fraction
    p_splice: float = 0.3
    mix_db: tuple[float, float] = (5.0, 10.0)  # another batch item, this many dB quieter
    p_mix: float = 0.2
    noise_db: tuple[float, float] = (3.0, 30.0)  # salience noise floor at this SNR
    p_noise: float = 0.3


NO_AUGMENT = AugmentConfig(p_pitch=0, p_stretch=0, p_splice=0, p_mix=0, p_noise=0)


def passage_to_rendition_s(time_map: np.ndarray, passage_s: float, rng: np.random.Generator) -> float | None:
    """Invert a piecewise-linear (rendition_s, passage_s) map at passage_s; a random crossing if several."""
    r, p = time_map[:, 0], time_map[:, 1]
    lo, hi = np.minimum(p[:-1], p[1:]), np.maximum(p[:-1], p[1:])
    seg = np.flatnonzero((lo <= passage_s) & (passage_s <= hi) & (r[1:] > r[:-1]))  # no jumps
    if len(seg) == 0:
        return None
    i = int(rng.choice(seg))
    frac = 0.0 if hi[i] == lo[i] else (passage_s - p[i]) / (p[i + 1] - p[i])
    return float(r[i] + frac * (r[i + 1] - r[i]))


class Bank:
    """All renditions' features back to back in one (N, B) tensor on `device` (float16 on CUDA), or
    their pitch contours in one (N,) tensor (a pseudo-activation would take 360 floats a frame)."""

    def __init__(self, groups: list[TrainGroup], device: str = "cpu") -> None:
        self.groups = groups
        self.index: dict[tuple[int, int], int] = {}  # (group, rendition) -> clip number
        acts: list[np.ndarray] = []
        seen: dict[int, int] = {}  # a rendition shared by groups (a full song) is stored once
        for gi, g in enumerate(groups):
            for ri, rd in enumerate(g.renditions):
                key = id(rd.activation)
                if key not in seen:
                    seen[key] = len(acts)
                    acts.append(rd.activation)
                self.index[gi, ri] = seen[key]
        lengths = np.array([len(a) for a in acts], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        if acts and acts[0].ndim == 1:  # pitch contours: gather_pooled expands the windows it reads
            self.frames = torch.from_numpy(np.concatenate(acts).astype(np.float32)).to(device)
        else:
            dtype = torch.float16 if str(device).startswith("cuda") else torch.float32  # fp16 gathers are slow on CPU
            self.frames = torch.from_numpy(np.concatenate(acts)).to(device, dtype)
        self.by_melody: dict[str, list[int]] = {}  # melody -> its groups (batches: distinct melodies)
        for gi, g in enumerate(groups):
            self.by_melody.setdefault(g.melody_id, []).append(gi)


def sample_batch(bank: Bank, spec: WindowSpec, k_groups: int, per_group: int,
                 rng: np.random.Generator, aug: AugmentConfig,
                 feature: str = "crepe") -> tuple[torch.Tensor, torch.Tensor]:
    """K-group batch: ((K * per_group, n_bins, F) `feature` model inputs, (K * per_group,) group labels).

    Groups come from distinct melodies; the first `anchors` renditions (the original, and the
    score where there is one) are always in, the others drawn at random. Each rendition's window is centred on the same
    passage moment, read at its own tempo (times the stretch augmentation).
    """
    by_melody = bank.by_melody
    melodies = list(by_melody)
    chosen = rng.choice(len(melodies), size=min(k_groups, len(melodies)), replace=False)
    half_w = spec.window_s / 2
    starts, begins, ends, stretch, labels = [], [], [], [], []
    for label, mi in enumerate(chosen):
        gi = int(rng.choice(by_melody[melodies[mi]]))
        g = bank.groups[gi]
        n = len(g.renditions)
        anchors = [i for i, rd in enumerate(g.renditions[:2]) if i == 0 or rd.kind == "score"]
        rest = np.arange(len(anchors), n)
        k = per_group - len(anchors)
        picks = anchors + list(rng.choice(rest, size=k, replace=len(rest) < k)) if len(rest) else \
            list(rng.choice(n, size=per_group, replace=True))
        lo = max(float(rd.time_map[:, 1].min()) for rd in g.renditions)
        hi = min(float(rd.time_map[:, 1].max()) for rd in g.renditions)
        centre = rng.uniform(lo, max(lo, hi))
        for ri in picks:
            rd = g.renditions[ri]
            t = passage_to_rendition_s(rd.time_map, centre, rng)
            s = rng.uniform(*aug.stretch) if rng.random() < aug.p_stretch else 1.0
            t = rd.duration_s / 2 if t is None else t
            row = bank.index[gi, int(ri)]
            starts.append(bank.offsets[row] + round((t - half_w * s) / CREPE_HOP_S))
            begins.append(bank.offsets[row])
            ends.append(bank.offsets[row + 1])
            stretch.append(s)
            labels.append(label)
    win = gather_pooled(bank.frames, np.array(starts), spec.feature_frames, ends=np.array(ends),
                        begins=np.array(begins), stretch=np.array(stretch))
    shift = torch.from_numpy(_pitch_shifts(len(labels), rng, aug)).to(win.device)
    x = augment(model_inputs(win, feature, shift_semitones=shift), rng, aug)
    return x, torch.tensor(labels, device=x.device)


def _pitch_shifts(n: int, rng: np.random.Generator, aug: AugmentConfig) -> np.ndarray:
    on = rng.random(n) < aug.p_pitch
    return np.where(on, rng.uniform(-1, 1, n) * aug.pitch_shift_st, 0.0)  # semitones


def augment(x: torch.Tensor, rng: np.random.Generator, aug: AugmentConfig) -> torch.Tensor:
    """(n, bins, F) windows -> augmented copy: SpliceOut, mixing with another item, noise floor."""
    n, _, f = x.shape
    x = x.clone()
    for i in np.flatnonzero(rng.random(n) < aug.p_splice):
        for _ in range(int(rng.integers(1, 3))):
            w = int(rng.integers(1, max(2, int(aug.splice_max_frac * f))))
            a = int(rng.integers(0, max(1, f - w)))
            x[i, :, a:a + w] = 0.0
    mix = np.flatnonzero(rng.random(n) < aug.p_mix)
    if len(mix):
        other = torch.from_numpy(rng.integers(0, n, len(mix))).to(x.device)
        gain = torch.from_numpy(10 ** (-rng.uniform(*aug.mix_db, len(mix)) / 20)).to(x)
        idx = torch.from_numpy(mix).to(x.device)
        x[idx] = torch.clamp(x[idx] + gain[:, None, None] * x[other], 0.0, 1.0)
    noisy = np.flatnonzero(rng.random(n) < aug.p_noise)
    if len(noisy):
        idx = torch.from_numpy(noisy).to(x.device)
        gain = torch.from_numpy(10 ** (-rng.uniform(*aug.noise_db, len(noisy)) / 20)).to(x)
        peak = x[idx].amax(dim=(1, 2), keepdim=True)
        noise = torch.rand_like(x[idx]) * gain[:, None, None] * peak
        x[idx] = torch.clamp(x[idx] + noise, 0.0, 1.0)
    return x


TRAIN_FEATURES = ("crepe", "cqt", "contour")


def model_feature(train_feature: str) -> str:
    """The model input a training feature feeds: a tracked contour becomes a CREPE-like pseudo-activation."""
    return "crepe" if train_feature == "contour" else train_feature


def rendition_contour(audio: np.ndarray, audio_type: str) -> np.ndarray:
    """(T,) float32 MIDI per 10 ms (NaN unvoiced): what humdex's front end tracks in a version's
    audio, the song tracker (pitch.DEFAULT_SONG_METHOD) on an original or cover, the query
    tracker (pitch.DEFAULT_METHOD) on a hum; all unvoiced when it finds no pitch. Training on
    these teaches the encoder the tracker's octave errors, gaps and leaks from the band."""
    from humdex.errors import AudioError
    from humdex.frontend import pitch

    method = pitch.DEFAULT_SONG_METHOD if audio_type in ("original", "cover") else pitch.DEFAULT_METHOD
    try:
        contour = pitch.query_contour(audio, SAMPLE_RATE, method)
    except AudioError:
        return np.full(pitch.n_frames(len(audio)), np.nan, np.float32)
    midi = contour.resample(CREPE_HOP_S).midi if contour.hop_s != CREPE_HOP_S else contour.midi
    return np.asarray(midi, np.float32)


def rendition_frames(rendition: TrainRendition) -> np.ndarray:
    """(T, B) float32 model features of a rendition (a contour becomes its pseudo-activation)."""
    return model_input(rendition.activation)


def model_input(frames: np.ndarray) -> np.ndarray:
    """(T, B) float32 model input: features as they are, a (T,) tracked contour as its (T, 360)
    pseudo-activation."""
    if frames.ndim == 2:
        return frames.astype(np.float32)
    from humdex.frontend.contour import Contour
    from humdex.learned.features import contour_to_activation

    return contour_to_activation(Contour(frames, CREPE_HOP_S))


def chad_split(rec_split: str, group_id: str, val_percent: int = 5) -> str:
    """A fragment group's split: the metadata's own (synthetic corpus) or a stable hash of group_id."""
    if rec_split:
        return "validation" if rec_split in ("validation", "val") else rec_split
    import zlib

    return "validation" if zlib.crc32(group_id.encode()) % 100 < val_percent else "train"


def load_chad_groups(root: str | Path, split: str, cache_dir: str | Path | None = None,
                     max_fragments: int | None = None, progress: bool = True,
                     feature: str = "crepe",
                     audio_types: tuple[str, ...] = ("original", "cover", "humming"),
                     workers: int = 1) -> list[TrainGroup]:
    """TrainGroups from a CHAD-layout folder (metadata.csv + fragments/...), one per fragment.

    Versions come originals first; a fragment without an original (CHAD's hummings subset
    alone) is a group when two or more people hummed it. Each version's features (`feature` "crepe": CREPE-tiny
    activation; "cqt": features.cqt_features; "contour": the melody the product's front end
    tracks, rendition_contour) are computed once and cached as .npy under
    cache_dir (default root/.humdex_cache). Time maps: the synthetic
    corpus's exact ones when the metadata has them, else (real CHAD) a linear map of each
    version onto the first version's duration (the original's), since CHAD's versions are
    aligned end to end.
    Missing cache files are computed by `workers` processes.
    Versions of other audio_types are left out (M0 of the self-training rounds: hums and
    originals only), and so are mined rows nobody may train on (status rejected, uncertain or
    different: chad.USABLE_STATUS) and rows marked unavailable (videos a download could not get).
    """
    from tqdm import tqdm

    from humdex.training.chad import (
        METADATA_NAME,
        USABLE_STATUS,
        read_metadata,
        records_by_fragment,
    )

    if feature not in TRAIN_FEATURES:
        raise ValueError(f"unknown feature {feature!r}; expected one of {TRAIN_FEATURES}")

    root = Path(root)
    cache = Path(cache_dir) if cache_dir else root / ".humdex_cache"
    cache.mkdir(parents=True, exist_ok=True)
    usable = [r for r in read_metadata(root / METADATA_NAME)
              if r.audio_type in audio_types and r.extra.get("status", "") in USABLE_STATUS
              and r.is_available is not False]
    frags = [(k, recs) for k, recs in records_by_fragment(usable).items()
             if k[1] != "full" and chad_split(recs[0].split, k[0]) == split]
    frags = frags[:max_fragments] if max_fragments else frags
    def path_of(rec) -> Path:
        return cache / f"{rec.group_id}__{rec.fragment_id}__{rec.id}{_CACHE_SUFFIX[feature]}.npy"

    missing = [(rec, root, path_of(rec), feature) for _, recs in frags for rec in recs if not path_of(rec).is_file()]
    if missing:
        _cache_features(missing, workers, progress)
    groups = []
    for (group_id, fragment_id), recs in tqdm(frags, desc=f"load {split}", disable=not progress):
        rends: list[TrainRendition] = []
        for rec in recs:
            act = np.load(path_of(rec))
            dur = len(act) * CREPE_HOP_S
            if rec.time_map is not None:
                tm = np.stack([rec.time_map.perf_s, rec.time_map.score_s], 1)
            else:
                ref = rends[0].duration_s if rends else dur
                tm = np.array([[0.0, 0.0], [dur, ref]])
            kind = rec.audio_type if rec.audio_type in ("original", "cover") else rec.kind or "hum"
            rends.append(TrainRendition(act, tm, kind))
        if len(rends) >= 2:  # an original and its versions, or (CHAD's hummings alone) 2+ hums
            groups.append(TrainGroup(recs[0].melody_id or group_id, tuple(rends)))
    return groups


_CACHE_SUFFIX = {"crepe": "", "cqt": "__cqt", "contour": "__contour"}  # CREPE caches keep their old names


def _cache_features(jobs: list[tuple], workers: int, progress: bool) -> None:
    """Compute and cache the features of (record, root, path, feature) jobs, in `workers` processes."""
    from tqdm import tqdm

    if workers <= 1:
        for job in tqdm(jobs, desc="features", disable=not progress):
            _cache_feature(job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: the parent may hold torch, numba and ONNX Runtime thread pools that fork would copy mid-state
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for _ in tqdm(pool.map(_cache_feature, jobs, chunksize=16), total=len(jobs), desc="features",
                      disable=not progress):
            pass


def _cache_feature(job: tuple) -> None:
    from humdex.files import atomic_write
    from humdex.learned.features import audio_frames
    from humdex.training.chad import load_fragment_audio

    rec, root, path, feature = job
    audio = load_fragment_audio(rec, root)
    act = (rendition_contour(audio, rec.audio_type) if feature == "contour"
           else audio_frames(audio, SAMPLE_RATE, feature).astype(np.float16))
    atomic_write(path, functools.partial(np.save, arr=act), fsync=False)
