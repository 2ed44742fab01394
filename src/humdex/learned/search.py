"""Learned search over a catalog: per-model fingerprint stores kept beside it, k-NN + rerank, fusion, DTW.

Every catalog song's melody (its Contour: MIDI notes, a pitch file, or the pitch tracked from
audio) is rendered to a CREPE-like pseudo-activation and fingerprinted by each model (M_short,
M_long); a CQT model reads an audio song's CQT instead (a melody: played as tones). The
fingerprints live in <db>/learned/<model>-<sha12>/ as a FaissStore (or in Milvus, by the
catalog's vector_store: then that folder holds only the lock) whose keys are "song_id@stamp", so a re-indexed or removed song is noticed and refreshed. A query's frames
(query_frames: the same choices) are fingerprinted the same way; songs come
from k-NN votes, are reranked by sequence correlation and fused over models (M_fused);
humdex.hybrid adds the classical DTW matcher's scores.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from humdex.errors import CatalogError
from humdex.files import folder_lock, remove_stray_temp_files
from humdex.frontend.contour import Contour
from humdex.learned.features import CREPE_HOP_S, audio_frames
from humdex.learned.fingerprints import (
    KNN_K,
    LARGE_CATALOG_SONGS,
    QUERY_SCALES,
    Match,
    add_ms,
    contour_frames,
    fingerprint_contour,
    fingerprint_frames,
    fuse,
    query_fingerprints,
    search_store,
)
from humdex.learned.milvus_store import MilvusStore
from humdex.learned.model_config import PRECISIONS
from humdex.learned.runtime import ModelHandle, model_handle
from humdex.learned.shipped import model_path
from humdex.learned.store_spec import DEFAULT_STORE, StoreSpec, parse_store
from humdex.learned.stores import FaissStore, VectorStore
from humdex.settings import settings

if TYPE_CHECKING:
    from humdex.learned.model import Encoder

LEARNED_DIR = "learned"
CHECKPOINT_S = 30.0  # while fingerprinting many songs, save the store at least this often
ADD_BATCH = 64  # songs per store.add while fingerprinting (one Milvus insert each)
_LOCK = threading.Lock()  # one sync at a time within a process (the server's threads)
Rows = list[tuple[int, float, float, float]]  # search answers: (song row, score, start_s, end_s)


@dataclass(frozen=True)
class LearnedConfig:
    models: tuple[str, ...] = ("short",)  # shipped model names; ("short", "long") = M_fused
    weights: tuple[float, ...] = (0.5, 0.5)  # late fusion
    min_song_hop_s: float = 0.5  # songs are fingerprinted at max(model hop, this): 2x cheaper for M_short
    audio_songs: str = "contour"  # audio songs: "activation" (CREPE-tiny on the file) or "contour"
    query_input: str = "contour"  # audio queries: "contour" (tracked pitch, fast) or "crepe" (tiny)
    query_scales: tuple[float, ...] | None = None  # tempo scales the query is fingerprinted at
    # (None: by catalog, query_scales_for)
    # query window hop in stretched time (None: the model's). A query starts anywhere on the songs'
    # 0.5 s grid: at the songs' hop (half the windows) hit rates fell on queries off it (BENCHMARKS.md)
    query_hop_s: float | None = None
    n_candidates: int = 200  # songs reranked by sequence correlation
    knn_k: int = KNN_K  # neighbours per query fingerprint in the k-NN vote
    # a song's votes / its windows ** this (fingerprints.scale_votes; None: length_power_for the store)
    vote_length_power: float | None = None
    dtw_candidates: int = 0  # > 0: this many learned candidates join the classical matcher's DTW
    # hybrid: the classical matcher scans every song of a catalog up to this size, beyond it only
    # the learned candidates (its FFT stage grows with the catalog: 0.1-0.35 s at 2048 songs)
    full_scan_songs: int = LARGE_CATALOG_SONGS
    # above full_scan_songs the classical FFT stage picks its candidates from this many
    # best-voted songs of the learned k-NN stage (and the reranked ones): at 9,500 songs the
    # true song was among the 200 reranked for 73 % of pool-validation hums, among the 1000
    # best-voted for 91 %; hybrid top-10 0.705 -> 0.750 (pools of 500 / 2000: 0.739)
    dtw_pool: int = 1000
    # songs the classical matcher's own FFT stage sends to DTW (by mean square, and as many by
    # pitch class). Chosen on pool-validation melodies at scale (BENCHMARKS.md, "2,000 held-out
    # records with the stage-2 net; the hybrid's classical stage sends 100 songs"): 200 dev
    # queries against 1,720 dev records, MRR 0.719 / 0.736 / 0.741 at 50 / 100 / 200, against the
    # same melodies as MIDI 0.845 / 0.855 / 0.861; at 200 songs no change. Search p50 at 1,720
    # MIDI songs (idle, 2 threads) 665 / 793 / 1,051 ms.
    classical_candidates: int = 100
    # and the songs its query parts send there (MatcherConfig.part_candidates), chosen on
    # pool-validation melodies (BENCHMARKS.md, "Stage 1 matches the query's halves"): 1,720 dev
    # MIDI songs MRR 0.853 -> 0.865, 1,720 dev records 0.750 -> 0.760, f0 files 0.754 -> 0.759
    # with 50. Since stage 1 runs in cache-sized chunks on two threads ("Stage 1 by chunks"), the
    # search with them on 2,000 held-out records (stem + mix) takes 0.93-0.98x the p50 of the
    # search before, which went without them there
    classical_part_candidates: int = 50
    # above full_scan_songs, the songs it sends to DTW from the dtw_pool (measured at 9,500 to
    # 90,000 songs with 50; 100 was not measured there)
    pooled_candidates: int = 50
    from_start_slack_s: float = 2.0  # from_start: the query begins at most this far into the song
    # hybrid score = w * DTW score + (1 - w) * learned score, for queries from anywhere:
    # dtw_weight in catalogs of written melodies (MIDI, scores) and in every catalog above
    # full_scan_songs, dtw_weight_performed in catalogs mostly of performances (records, pitch
    # files tracked from them) up to it. Chosen on pool-validation melodies (BENCHMARKS.md):
    # the 200-song dev lists (benchmarks/hybrid_lists.py + hybrid_fusion.py) gave MRR 0.817 /
    # 0.857 / 0.860 on MIDI at 0.55 / 0.7 / 0.8 but 0.585 / 0.577 / 0.568 on records (f0 files
    # 0.549 / 0.546 / 0.547); 100 hums of a 2,000-song melody catalog 0.739 / 0.773 / 0.780, and
    # of 12,000 / 20,000 songs 0.679 / 0.648 at 0.55, 0.724 / 0.693 at 0.8, 0.728 / 0.684 at 0.9
    # (benchmarks/scale.py --fused-hybrid). From the start the learned search is weaker on the
    # short openings (8 s) such queries often are (benchmarks/hybrid_fusion.py). Since the
    # classical stage 1 also ranks windows by pitch class (matcher.py) the DTW is the stronger
    # half on performances too: dev MRR at 0.55 / 0.7 / 0.8 records 0.750 / 0.755 / 0.751, f0
    # files 0.651 / 0.670 / 0.660; MIDI 0.875 / 0.897 / 0.911 (0.9: 0.902). Performed catalogs
    # weigh it 0.75 since the dev benchmark at scale (BENCHMARKS.md, "Performed catalogs weigh
    # the DTW 0.75"): MRR at 0.7 / 0.75 / 0.8 on 1,720 dev records 0.734 / 0.750 / 0.747, on
    # their f0 files 0.735 / 0.754 / 0.753; on four 200-song dev catalogs 0.75 is 0.001 above 0.7
    # on average.
    dtw_weight: float = 0.8
    dtw_weight_performed: float = 0.75
    dtw_weight_from_start: float = 0.85

    def handles(self) -> tuple[ModelHandle, ...]:
        """The configured models, each loaded once per process (model_handle)."""
        return tuple(model_handle(name) for name in self.models)


def song_key(song_id: str, stamp: str) -> str:
    return f"{song_id}@{stamp}"


def key_song_id(key: str) -> str:
    return key.rsplit("@", 1)[0]


@functools.lru_cache(maxsize=4)
def _saved_store(folder: str, mtime_ns: int) -> FaissStore:
    """A store as saved (never changed in place: sync_store changes a fresh copy)."""
    return FaissStore.load(folder)


def store_folder(db_dir: str | Path, model: ModelHandle, song_hop_s: float, audio_songs: str) -> Path:
    """Where a shipped model keeps a catalog's song fingerprints."""
    suffix = "-act" if audio_songs == "activation" else ""
    suffix += PRECISIONS[model.precision]  # int8 and float fingerprints differ slightly
    return Path(db_dir) / LEARNED_DIR / f"{model.name}-{model.weights_sha256[:12]}-hop{song_hop_s:g}{suffix}"


def song_fingerprints(model: Encoder, song, melody: Contour, song_hop_s: float,
                      audio_songs: str = "contour") -> np.ndarray:
    """(n, 128) fingerprints of one catalog song. A CREPE model reads the song's audio as a
    CREPE-tiny activation when audio_songs == "activation" (the paper's way), else its melody;
    a CQT model reads the audio's CQT. When the file is gone, or the song is a MIDI or pitch
    file, the melody stands in (fingerprints.contour_frames)."""
    feature = model.config.feature
    has_audio = song.kind == "audio" and Path(song.source).is_file()
    if has_audio and (feature == "cqt" or audio_songs == "activation"):
        from humdex.frontend.audio import SAMPLE_RATE, load

        return fingerprint_frames(model, audio_frames(load(song.source, SAMPLE_RATE), SAMPLE_RATE, feature),
                                  song_hop_s)
    return fingerprint_contour(model, melody, song_hop_s)


def model_ref(model: ModelHandle) -> str:
    """How another process names this model to load it (model_handle): a shipped model by its
    name (its file may lie elsewhere on another machine), a user's by its .pt file."""
    from humdex.learned.shipped import DEFAULT_MODELS, default_model_path

    if model.name in DEFAULT_MODELS and default_model_path(model.name).resolve() == model.path:
        return model.name
    return str(model.path)


def worker_song_fingerprints(model_name: str, weights_sha256: str, precision: str, song,
                             melody: Contour, song_hop_s: float, audio_songs: str,
                             has_file: bool) -> np.ndarray:
    """song_fingerprints by the model `model_name` (model_ref), in an executor's worker: ModelError
    if the worker's model is not the driver's (its weights, its precision), HumdexError if the
    worker cannot read the song's audio file that the driver can (`has_file`)."""
    from humdex.errors import HumdexError, ModelError

    model = model_handle(model_name)
    if model.weights_sha256 != weights_sha256 or model.precision != precision:
        raise ModelError(f"a worker's model {model_name} ({model.weights_sha256[:12]}, "
                         f"{model.precision}) is not the driver's ({weights_sha256[:12]}, {precision}): "
                         "run the same humdex and HUMDEX_INT8 on every node")
    if has_file and song.kind == "audio" and not Path(song.source).is_file():
        raise HumdexError(f"{song.source}: not found on a worker (songs must be on a filesystem "
                          "every node shares)")
    return song_fingerprints(model.encoder, song, melody, song_hop_s, audio_songs)


def sync_store(db_dir: str | Path, snapshot, model: ModelHandle, song_hop_s: float,
               progress: bool = False, audio_songs: str = "contour",
               executor: Executor | None = None) -> VectorStore:
    """The model's store for this catalog snapshot, fingerprinting songs it lacks and dropping stale ones.

    The store is the catalog's (snapshot.vector_store: FAISS files in the folder by default, or
    Milvus). One process at a time changes a store (a lock on its folder); progress is saved every
    CHECKPOINT_S seconds, so a killed run resumes where it stopped. A corrupt FAISS store is
    rebuilt (with a warning) rather than failing the search; a Milvus store is reconciled with the
    catalog when first opened (milvus_store.MilvusStore.reconcile). With an `executor` (a
    process pool, humdex.cluster.RayExecutor) the songs are fingerprinted there and added here in
    the same order: the same store.
    """
    folder = store_folder(db_dir, model, song_hop_s, audio_songs)
    wanted = {song_key(s.song_id, s.stamp): i for i, s in enumerate(snapshot.songs)}
    spec = parse_store(getattr(snapshot, "vector_store", DEFAULT_STORE))
    with _LOCK:
        if spec.kind == "milvus":
            store: VectorStore = _milvus_store(spec, folder)
            if set(store.keys()) == set(wanted):
                return store
        else:
            vectors = folder / "vectors.npz"
            try:
                store = _saved_store(str(folder), vectors.stat().st_mtime_ns) if vectors.is_file() \
                    else FaissStore(codec=spec.codec)
                if set(store.keys()) == set(wanted) and store.codec == spec.codec:
                    return store
            except (CatalogError, OSError):
                pass  # corrupt, or replaced meanwhile: the locked path below sorts it out
        with folder_lock(folder):
            # the newest on disk, a private copy to change (Milvus: re-read from the server)
            store = _load_or_rebuild(folder, spec.codec) if spec.kind == "faiss" else store
            if isinstance(store, MilvusStore):
                store.refresh()
            have = set(store.keys())
            stale = [k for k in have if k not in wanted]
            missing = [k for k in wanted if k not in have]
            recoded = isinstance(store, FaissStore) and store.codec != spec.codec
            if isinstance(store, FaissStore) and recoded:
                store.set_codec(spec.codec)  # the index is rebuilt in the new codec before saving
            if not stale and not missing and not recoded:
                return store
            store.remove(stale)
            _fingerprint_into(store, folder, missing, wanted, snapshot, model, song_hop_s,
                              progress, audio_songs, executor)
            if isinstance(store, FaissStore):
                store.save(folder)
                remove_stray_temp_files(folder)  # of a writer killed earlier (we hold the lock)
            return store


@functools.lru_cache(maxsize=16)
def _milvus_opened(spec: StoreSpec, folder: str) -> MilvusStore:
    """The Milvus store of a catalog folder's model, opened (and reconciled: what a crash left
    half written is deleted, under the folder's lock) once per process."""
    with folder_lock(folder):
        store = MilvusStore(spec, Path(folder).name)
        dropped = store.reconcile()
    if dropped:
        import sys

        print(f"humdex: {len(dropped)} songs were half written in Milvus (a crash?); "
              "fingerprinting them again", file=sys.stderr)
    return store


def close_stores() -> None:
    """Forget the Milvus stores this process opened and close their clients (tests; a server
    shutting down): milvus-lite then frees its file for another process."""
    from humdex.learned.milvus_store import close_clients

    _milvus_opened.cache_clear()
    close_clients()


def _milvus_store(spec: StoreSpec, folder: Path) -> MilvusStore:
    if not spec.collection:
        raise CatalogError(f"store {spec.text}: no collection prefix (set it with Catalog.set_vector_store)")
    return _milvus_opened(spec, str(folder))


def _load_or_rebuild(folder: Path, codec: str) -> FaissStore:
    if not (folder / "vectors.npz").is_file():
        return FaissStore(codec=codec)
    try:
        return FaissStore.load(folder)
    except CatalogError as err:
        import sys

        print(f"humdex: {err}; rebuilding it", file=sys.stderr)
        return FaissStore(codec=codec)


def _fingerprint_into(store: VectorStore, folder: Path, missing: list[str], wanted: dict[str, int],
                      snapshot, model: ModelHandle, song_hop_s: float, progress: bool,
                      audio_songs: str, executor: Executor | None = None) -> None:
    """Add the `missing` songs' fingerprints to `store`: a FaissStore one by one, saved every
    CHECKPOINT_S seconds; a Milvus store ADD_BATCH songs per call, each batch kept as it is added.
    With an `executor`, computed there (worker_song_fingerprints), a few songs ahead."""
    import time

    from tqdm import tqdm

    saved_at = time.monotonic()
    batch_size = ADD_BATCH if isinstance(store, MilvusStore) else 1
    batch: tuple[list[str], list[np.ndarray]] = ([], [])
    computed = None
    if executor is not None:
        from humdex.cluster import executor_workers, ordered_map

        jobs = ((model_ref(model), model.weights_sha256, model.precision, snapshot.songs[wanted[k]],
                 snapshot.melodies[wanted[k]], song_hop_s, audio_songs,
                 Path(snapshot.songs[wanted[k]].source).is_file()) for k in missing)
        computed = ordered_map(executor, worker_song_fingerprints, jobs, 2 * executor_workers(executor))
    for n, k in enumerate(tqdm(missing, desc=f"fingerprint ({model.name})", disable=not progress), 1):
        i = wanted[k]
        batch[0].append(k)
        batch[1].append(next(computed).result() if computed is not None else
                        song_fingerprints(model.encoder, snapshot.songs[i], snapshot.melodies[i],
                                          song_hop_s, audio_songs))
        if len(batch[0]) < batch_size and n < len(missing):
            continue
        store.add(*batch)
        batch = ([], [])
        if isinstance(store, FaissStore) and time.monotonic() - saved_at > CHECKPOINT_S:
            store.save(folder)
            saved_at = time.monotonic()


def query_frames(audio: np.ndarray | None, sample_rate: int, contour: Contour | None,
                 query_input: str = "crepe") -> Callable[[str], np.ndarray]:
    """The query's (T, B) frames per model feature, each computed once: "crepe" -> CREPE-tiny on
    audio (query_input "crepe"), else the contour's pseudo-activation; "cqt" -> the audio's CQT,
    else the contour played as tones.

    On the MIREX-protocol benchmark both CREPE inputs rank alike and the contour is ~30x
    cheaper (BENCHMARKS.md), so learned_search uses the contour unless told otherwise.
    """
    if audio is None and contour is None:
        raise ValueError("a query needs audio or a contour")

    @functools.cache
    def frames(feature: str) -> np.ndarray:
        if audio is not None and (contour is None or query_input == "crepe" or feature == "cqt"):
            return audio_frames(audio, sample_rate, feature)
        assert contour is not None
        return contour_frames(contour, feature)

    return frames


def from_start_limits(snapshot, config: LearnedConfig) -> dict[str, float]:
    """Per song key, how far into the song a query sung from its start may begin: its first
    note (MIDI files may open with rests) + config.from_start_slack_s, as the classical matcher."""
    refs = snapshot.references()  # cached with the catalog, as is its first-voiced frame per song
    lead_s = refs.first_voiced() * refs.hop_s
    return {song_key(song.song_id, song.stamp): float(lead) + config.from_start_slack_s
            for song, lead in zip(snapshot.songs, lead_s)}


def query_scales_for(snapshot, config: LearnedConfig) -> tuple[float, ...]:
    """The query's tempo scales: config.query_scales, else by what most songs are.

    A MIDI file or score has whatever tempo it was written with, so a hum may be 0.5-2x it:
    QUERY_SCALES. A recording, or a pitch file tracked from one, is a performance at a singable
    tempo like the hum's own: the query as it is (the rerank still tries +-25 %), as in the
    paper. Measured both ways in BENCHMARKS.md: the scales lift MIDI catalogs and hurt audio
    ones (more chances for a wrong song to line up), and pitch-file ones (dev f0 files: default
    MRR 0.553 with them, 0.604 without).
    """
    if config.query_scales is not None:
        return config.query_scales
    return (1.0,) if snapshot.mostly_performed else QUERY_SCALES


def learned_matches(query: np.ndarray | Callable[[str], np.ndarray], db_dir: str | Path, snapshot,
                    top: int = 10, from_start: bool = False, config: LearnedConfig = LearnedConfig(),
                    timing: dict | None = None, voted: list[str] | None = None) -> list[Match]:
    """Fused, reranked matches (song keys "song_id@stamp") of a query: its frames per feature
    (query_frames), or a (T, 360) activation for CREPE models. voted: gets each model's
    config.dtw_pool best-voted song keys appended (search_store)."""
    import time

    results = []
    for model in config.handles():
        song_hop = model.song_hop_s(config.min_song_hop_s)
        # the query first: in a new process search.prewarm is still loading the store meanwhile
        q_hop = config.query_hop_s or model.config.hop_s
        frames = query if isinstance(query, np.ndarray) else query(model.feature)
        q = query_fingerprints(model, frames, query_scales_for(snapshot, config), q_hop,
                               timing=timing)
        t0 = time.perf_counter()
        store = sync_store(db_dir, snapshot, model, song_hop, audio_songs=config.audio_songs)
        if timing is not None:
            add_ms(timing, "index_sync", time.perf_counter() - t0)
        results.append(search_store(store, q, q_hop, top=max(top, config.n_candidates),
                                    n_candidates=config.n_candidates,
                                    max_offset_s=from_start_limits(snapshot, config) if from_start else None,
                                    song_hop_s=song_hop, timing=timing, voted=voted,
                                    n_voted=config.dtw_pool, k=config.knn_k,
                                    length_power=config.vote_length_power))
    fused = fuse(results, config.weights[: len(results)]) if len(results) > 1 else results[0]
    return fused[:max(top, config.dtw_candidates)]


def default_config() -> LearnedConfig:
    """LearnedConfig with the models, inputs and query scales of humdex.settings (HUMDEX_MODELS,
    HUMDEX_AUDIO_SONGS, HUMDEX_QUERY_INPUT, HUMDEX_QUERY_SCALES)."""
    env = settings()
    for name in env.models:
        model_path(name)  # ModelError for an unknown name or a missing file
    return LearnedConfig(models=env.models, audio_songs=env.audio_songs, query_input=env.query_input,
                         query_scales=env.query_scales)


def load_default_models(db_dir: str | Path | None = None, snapshot=None,
                        config: LearnedConfig | None = None) -> None:
    """Load the configured encoders' ONNX Runtime sessions (learned.runtime: no torch) and
    (given the catalog) their fingerprint stores now, as a search would at its first query: what
    search.prewarm runs beside the query's pitch tracking."""
    config = config or default_config()
    for model in config.handles():
        if model.session is None:  # no export: the query runs through torch
            from humdex.learned.model import inference_module

            inference_module(model.encoder)
        if db_dir is not None and snapshot is not None and snapshot.songs:
            sync_store(db_dir, snapshot, model, model.song_hop_s(config.min_song_hop_s),
                       audio_songs=config.audio_songs)


def sync_catalog(db_dir: str | Path, snapshot, config: LearnedConfig | None = None,
                 progress: bool = False, executor: Executor | None = None) -> None:
    """Fingerprint every song the stores lack now (at indexing) rather than at the first query
    (in `executor`'s workers when given: sync_store)."""
    config = config or default_config()
    for model in config.handles():
        sync_store(db_dir, snapshot, model, model.song_hop_s(config.min_song_hop_s),
                   progress=progress, audio_songs=config.audio_songs, executor=executor)


def prepared_query(query_audio: np.ndarray | None, sample_rate: int, query_contour: Contour | None,
                   config: LearnedConfig, timing: dict | None = None
                   ) -> tuple[Callable[[str], np.ndarray], float]:
    """(the query's frames per feature (query_frames), its duration in seconds)."""
    import time

    t0 = time.perf_counter()
    query = query_frames(query_audio, sample_rate, query_contour, config.query_input)
    query_s = len(query(model_handle(config.models[0]).feature)) * CREPE_HOP_S
    if timing is not None:
        add_ms(timing, "activation", time.perf_counter() - t0)
    return query, query_s


def match_rows(matches: list[Match], snapshot, query_s: float) -> Rows:
    """Matches (song keys) -> (song row, score, start_s, end_s) rows of the snapshot's songs."""
    index = {s.song_id: i for i, s in enumerate(snapshot.songs)}
    return [(index[key_song_id(m.song_key)], m.score, m.offset_s, m.offset_s + query_s * m.ratio)
            for m in matches if key_song_id(m.song_key) in index]


def learned_search(query_audio: np.ndarray | None, sample_rate: int, query_contour: Contour | None,
                   db_dir: str | Path, snapshot, top: int = 10, from_start: bool = False,
                   config: LearnedConfig | None = None, timing: dict | None = None) -> Rows:
    """(song index, score, start_s, end_s) of the best songs for a query, best first: fused
    learned scores (mean cosine, -1..1). humdex.hybrid adds the classical matcher's DTW."""
    config = config or default_config()
    query, query_s = prepared_query(query_audio, sample_rate, query_contour, config, timing)
    matches = learned_matches(query, db_dir, snapshot, top, from_start, config, timing)
    return match_rows(matches, snapshot, query_s)[:top]
