"""Scale benchmark (issue 18): build time, RAM, disk, latency and top-10 at growing catalog sizes.

Songs are melodies of the shipped pool and variations of them (see `variation`: two pool
melodies spliced at a note, transposed, ornamented, re-rhythmed, 12 % of the notes moved,
tempo x0.8-1.25), fingerprinted by the real shipped
model (M_short, int8 unless HUMDEX_INT8=0) from their melody, as `humdex index` fingerprints a
MIDI file. Queries are synthesized hums (10 s, starting anywhere, with a microphone channel) of
`--queries` melodies of the pool's test split, pitch-tracked and fingerprinted at the 7 tempo
scales as `humdex search` does for a melody catalog; their songs come first in the song list, so
every catalog size holds them and the same queries run at every size. Beyond the songs that
`prepare` fingerprinted, `measure` adds DISTRACTORS: perturbed copies of real fingerprint
sequences (each vector + Gaussian noise, renormalised), which cost what real songs cost but are
not songs; the report says how many there are.

    python benchmarks/scale.py prepare --songs 20000 --queries 100 --workers 2   # or --ray [ADDRESS]
    python benchmarks/scale.py measure --songs 2000 --store faiss --out out/scale/2k.json

`measure` builds the store, saves it (disk bytes), and runs the queries through the product's
`search_store` (k-NN votes -> 200 candidates -> sequence rerank), timing the ANN and the rerank
stage; peak RSS is the measuring process's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np

WORK = Path("out/scale")
SONG_HOP_S = 0.5  # LearnedConfig.min_song_hop_s: songs are fingerprinted every 0.5 s
CHUNK = 500  # songs per fingerprint file (prepare resumes by chunk)


def song_notes(n_songs: int, query_ids: list[str], seed: int = 0) -> list[tuple[str, list]]:
    """[(song id, notes)]: the query melodies first, then the rest of the pool (shuffled), then
    variations until n_songs."""
    from humdex.training.melody_pool import load_pool

    pool = load_pool()
    by_id = {m.melody_id: m for m in pool}
    rest = [m for m in pool if m.melody_id not in set(query_ids)]
    rng = np.random.default_rng(seed)
    rng.shuffle(rest)  # type: ignore[arg-type]
    songs = [(i, by_id[i].notes) for i in query_ids] + [(m.melody_id, m.notes) for m in rest]
    n = 0
    while len(songs) < n_songs:
        n += 1
        a, b = rng.choice(len(pool), 2, replace=False)
        songs.append((f"var{n:06d}", variation(pool[a].notes, pool[b].notes, rng)))
    return songs[:n_songs]


def variation(a: list, b: list, rng: np.random.Generator) -> list:
    """A new tune made from two pool tunes, as a composer or a folk singer varies one: re-phrased
    (a's notes up to a random note, then b's from a random note, shifted to follow on),
    transposed (the whole tune -5..+6 semitones), ornamented (a quarter of the notes of 0.25 s
    or more split into the note and a short upper or lower neighbour), re-rhythmed (a third of
    the pairs of successive notes re-timed long-short, dotted, or short-long), 12 % of the
    notes moved 1-3 semitones, and the tempo scaled by 0.8-1.25. Never a copy: every rule
    changes the tune's notes or timing, and the splice makes a melody no single song has."""
    from humdex.frontend.melody import Note

    cut_a, cut_b = int(rng.integers(len(a) // 3, len(a))), int(rng.integers(0, max(1, len(b) // 2)))
    head, tail = a[:cut_a], b[cut_b:]
    shift_s = (head[-1].onset_s + head[-1].duration_s) - tail[0].onset_s if head and tail else 0.0
    key_shift = head[-1].pitch_midi - tail[0].pitch_midi if head and tail else 0.0
    notes = head + [Note(n.onset_s + shift_s, n.duration_s, n.pitch_midi + round(key_shift)) for n in tail]
    # re-rhythm: pairs (i, i+1) share their total time differently (3:1, 1:3 or 2:1)
    onsets = [n.onset_s for n in notes]
    for i in range(0, len(notes) - 2, 2):
        if rng.random() < 1 / 3:
            span = onsets[i + 2] - onsets[i]
            onsets[i + 1] = onsets[i] + span * float(rng.choice([0.75, 0.25, 2 / 3]))
    # each note keeps its articulation: the share of its inter-onset time it sounds
    durs = [n.duration_s if j + 1 == len(notes) else (onsets[j + 1] - onsets[j]) * min(
        1.0, n.duration_s / max(notes[j + 1].onset_s - n.onset_s, 1e-3)) for j, n in enumerate(notes)]
    transpose = int(rng.integers(-5, 7))
    moved = rng.random(len(notes)) < 0.12
    steps = rng.choice([-3, -2, -1, 1, 2, 3], len(notes))
    out: list = []
    for n, o, d, m, s in zip(notes, onsets, durs, moved, steps):
        pitch = n.pitch_midi + transpose + (int(s) if m else 0)
        if d >= 0.25 and rng.random() < 0.25:  # ornament: note, then a short neighbour
            grace = min(0.12, d / 3)
            out.append(Note(o, d - grace, pitch))
            out.append(Note(o + d - grace, grace, pitch + int(rng.choice([-2, -1, 1, 2]))))
        else:
            out.append(Note(o, max(d, 0.05), pitch))
    tempo = float(rng.uniform(0.8, 1.25))
    return [Note(n.onset_s * tempo, n.duration_s * tempo, n.pitch_midi) for n in out]


def fingerprint_chunk(args: tuple[int, list[tuple[str, list]], str]) -> str:
    """Fingerprint one chunk of songs into WORK/songs/chunk-NNNN.npz (skipped when it exists)."""
    index, songs, work = args
    path = Path(work) / "songs" / f"chunk-{index:04d}.npz"
    if path.is_file():
        return str(path)
    import torch

    torch.set_num_threads(1)
    from humdex.catalog.ingest import REFERENCE_HOP_S
    from humdex.frontend.melody import notes_to_contour
    from humdex.learned.fingerprints import fingerprint_contour
    from humdex.learned.model import load_model

    model = load_model(name="short")
    seqs = [fingerprint_contour(model, notes_to_contour(notes, REFERENCE_HOP_S).resample(REFERENCE_HOP_S)
                                .trimmed(), SONG_HOP_S) for _, notes in songs]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, keys=np.array([k for k, _ in songs]), lengths=np.array([len(s) for s in seqs]),
             vectors=np.concatenate(seqs).astype(np.float16))
    tmp.replace(path)
    return str(path)


def prepare(args: argparse.Namespace) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from humdex.cluster import executor_for
    from humdex.training.melody_pool import load_pool

    work = Path(args.work)
    rng = np.random.default_rng(args.seed)
    test = load_pool("test")
    query_ids = [test[i].melody_id for i in sorted(rng.choice(len(test), args.queries, replace=False))]
    songs = song_notes(args.songs, query_ids, args.seed)
    queries_path = work / "queries.npz"
    if not queries_path.is_file():  # first: `measure` can run on the songs fingerprinted so far
        work.mkdir(parents=True, exist_ok=True)
        write_queries(queries_path, query_ids, args.seed)
    chunks = [(i // CHUNK, songs[i:i + CHUNK], str(work)) for i in range(0, len(songs), CHUNK)]
    t0 = time.perf_counter()
    with executor_for(args.ray) if args.ray else ProcessPoolExecutor(args.workers) as pool:
        list(tqdm(pool.map(fingerprint_chunk, chunks), total=len(chunks), desc="fingerprint songs"))
    took = time.perf_counter() - t0
    meta = {"songs": len(songs), "queries": len(query_ids), "workers": args.workers, "ray": args.ray,
            "fingerprint_s_this_run": round(took, 1), "chunks": len(chunks)}
    (work / f"prepare-{len(songs)}.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


def write_queries(path: Path, query_ids: list[str], seed: int) -> None:
    """Hum each melody (10 s from anywhere), track its pitch, fingerprint it at the 7 scales."""
    from humdex.frontend.pitch import query_contour
    from humdex.learned.fingerprints import QUERY_SCALES, contour_frames, query_fingerprints
    from humdex.learned.model import load_model
    from humdex.synth.benchmark import QueryPlan, query_from_score
    from humdex.synth.score import Score
    from humdex.training.melody_pool import load_pool

    by_id = {m.melody_id: m for m in load_pool("test")}
    model = load_model(name="short")
    plan = QueryPlan(duration_s=10.0, from_start=False)
    arrays: dict[str, np.ndarray] = {"ids": np.array(query_ids), "hop_s": np.array(model.config.hop_s)}
    for n, qid in enumerate(query_ids):
        rend = query_from_score(Score.from_notes(by_id[qid].notes), "hum", np.random.default_rng([seed, n]), plan)
        contour = query_contour(rend.audio, rend.sample_rate)
        scaled = query_fingerprints(model, contour_frames(contour, "crepe"), QUERY_SCALES, model.config.hop_s)
        for s, q in enumerate(scaled):
            arrays[f"q{n}_s{s}"] = q.fingerprints.astype(np.float32)
            arrays[f"q{n}_scale{s}"] = np.array(q.scale)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_songs(work: Path, n_songs: int, noise: float, seed: int = 0):
    """(keys, sequences, n_distractors): the first n_songs fingerprinted songs, then perturbed
    copies of them (distractors) up to n_songs."""
    keys: list[str] = []
    seqs: list[np.ndarray] = []
    for path in sorted((work / "songs").glob("chunk-*.npz")):
        with np.load(path) as z:
            bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
            vectors = z["vectors"]
            for k, a, b in zip(z["keys"], bounds[:-1], bounds[1:]):
                keys.append(str(k))
                seqs.append(vectors[a:b])
        if len(keys) >= n_songs:
            break
    keys, seqs = keys[:n_songs], seqs[:n_songs]
    real = len(keys)
    rng = np.random.default_rng(seed)
    copy = 0
    while len(keys) < n_songs:
        copy += 1
        for i in range(min(real, n_songs - len(keys))):
            x = seqs[i].astype(np.float32) + noise * rng.standard_normal(seqs[i].shape, dtype=np.float32)
            keys.append(f"{keys[i]}~{copy}")
            seqs.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16))
    return keys, seqs, n_songs - real


def load_queries(work: Path):
    from humdex.learned.fingerprints import ScaledQuery

    with np.load(work / "queries.npz") as z:
        ids, hop_s = [str(i) for i in z["ids"]], float(z["hop_s"])
        out = []
        for n in range(len(ids)):
            scaled, s = [], 0
            while f"q{n}_s{s}" in z.files:
                scaled.append(ScaledQuery(float(z[f"q{n}_scale{s}"]), z[f"q{n}_s{s}"]))
                s += 1
            out.append(scaled)
    return ids, out, hop_s


class CpuTimed:
    """A store whose k-NN searches add their CPU time (ms) to cpu_ms; the rest passes through."""

    def __init__(self, store) -> None:
        self.store, self.cpu_ms = store, 0.0

    def search(self, vectors: np.ndarray, k: int):
        t = time.process_time()
        hits = self.store.search(vectors, k)
        self.cpu_ms += 1000 * (time.process_time() - t)
        return hits

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def store_for(text: str, work: Path, n_songs: int):
    from humdex.learned.store_spec import parse_store
    from humdex.learned.stores import FaissStore

    spec = parse_store(text)
    if spec.kind == "milvus":
        from humdex.learned.milvus_store import MilvusStore

        return MilvusStore(spec.with_collection(), f"scale{n_songs}")
    return FaissStore(codec=spec.codec)


def measure(args: argparse.Namespace) -> None:
    import faiss

    from humdex.learned.fingerprints import search_store
    from humdex.learned.stores import FaissStore

    threads = int(os.environ.get("HUMDEX_THREADS", "1"))
    faiss.omp_set_num_threads(threads)
    work = Path(args.work)
    t0 = time.perf_counter()
    keys, seqs, n_distractors = load_songs(work, args.songs, args.noise)
    load_s = time.perf_counter() - t0
    store = store_for(args.store, work, args.songs)
    t0 = time.perf_counter()
    for i in range(0, len(keys), 1000):
        store.add(keys[i:i + 1000], seqs[i:i + 1000])
    del seqs
    store.search(np.full((1, 128), 0.088, np.float32), 1)  # builds the index
    build_s = time.perf_counter() - t0
    disk = -1
    if isinstance(store, FaissStore):
        folder = work / "stores" / f"{args.songs}-{args.store.replace(':', '_')}"
        t0 = time.perf_counter()
        store.save(folder)
        save_s = time.perf_counter() - t0
        disk = (folder / "vectors.npz").stat().st_size
        index_bytes = len(faiss.serialize_index(store._index))
        seq_bytes = sum(s.nbytes for s in store._seqs.values())
    ids, queries, hop_s = load_queries(work)
    ranks, ann_ms, rerank_ms, ann_cpu_ms, total_cpu_ms = [], [], [], [], []
    for qid, q in zip(ids[: args.limit or None], queries[: args.limit or None]):
        timing: dict[str, float] = {}
        timed = CpuTimed(store)
        cpu0 = time.process_time()
        top = [m.song_key for m in search_store(timed, q, hop_s, top=10, song_hop_s=SONG_HOP_S, timing=timing)]
        total_cpu_ms.append(1000 * (time.process_time() - cpu0))
        ranks.append(top.index(qid) + 1 if qid in top else 0)
        ann_ms.append(timing["ann"])
        rerank_ms.append(timing["rerank"])
        ann_cpu_ms.append(timed.cpu_ms)
    r = np.array(ranks)
    report = {
        "songs": len(keys), "distractor_copies": n_distractors, "store": args.store,
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "vectors": store.n_vectors, "threads": threads, "queries": len(r),
        "top1": round(float(np.mean(r == 1)), 3), "top10": round(float(np.mean(r > 0)), 3),
        "mrr": round(float(np.mean(np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0))), 3),
        "ann_ms": {"p50": round(float(np.median(ann_ms)), 1), "p95": round(float(np.percentile(ann_ms, 95)), 1)},
        "rerank_ms": {"p50": round(float(np.median(rerank_ms)), 1),
                      "p95": round(float(np.percentile(rerank_ms, 95)), 1)},
        "search_ms_p50": round(float(np.median(np.add(ann_ms, rerank_ms))), 1),
        # CPU time of this process (all its threads): what the search costs, whatever else runs
        "knn_cpu_ms_p50": round(float(np.median(ann_cpu_ms)), 1),
        "search_cpu_ms": {"p50": round(float(np.median(total_cpu_ms)), 1),
                          "p95": round(float(np.percentile(total_cpu_ms, 95)), 1)},
        "load_fingerprints_s": round(load_s, 1), "build_s": round(build_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "disk_bytes": disk, "disk_bytes_per_song": round(disk / len(keys)) if disk > 0 else None,
    }
    if isinstance(store, FaissStore):
        report.update(index_kind=store.kind, save_s=round(save_s, 1), index_bytes=index_bytes,
                      sequence_bytes=seq_bytes, ram_bytes_per_song=round((index_bytes + seq_bytes) / len(keys)))
    print(json.dumps(report), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("prepare", help="fingerprint the songs and the queries (resumable)")
    a.add_argument("--songs", type=int, default=20000)
    a.add_argument("--queries", type=int, default=100)
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="fingerprint the chunks as Ray tasks instead (humdex.cluster; no ADDRESS: "
                        "a Ray instance on this machine)")
    a.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("measure", help="build one store of --songs songs and query it")
    m.add_argument("--songs", type=int, required=True)
    m.add_argument("--store", default="faiss")
    m.add_argument("--noise", type=float, default=0.05, help="distractor copies: noise per dimension")
    m.add_argument("--limit", type=int, default=0, help="queries to run (0: all)")
    m.add_argument("--out", default=None)
    for q in (a, m):
        q.add_argument("--work", default=str(WORK))
    args = p.parse_args(argv)
    prepare(args) if args.command == "prepare" else measure(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
