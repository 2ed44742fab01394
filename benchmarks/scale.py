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
import dataclasses
import itertools
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
    import multiprocessing
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
    # one thread per worker, as Ray gives each task: a spawned worker's OpenMP threads otherwise spin
    # on the other worker's core (5,000 songs on 2 cores: 529 s with 2 workers, 145 s on Ray)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "HUMDEX_THREADS"):
        os.environ.setdefault(name, "1")
    # spawn: writing the queries left torch/ONNX Runtime threads in this process, and a child forked
    # while one of them holds a lock can hang there (a fresh run's worker sat at 0 % CPU for 23 min)
    spawn = multiprocessing.get_context("spawn")
    with executor_for(args.ray) if args.ray else ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
        list(tqdm(pool.map(fingerprint_chunk, chunks), total=len(chunks), desc="fingerprint songs"))
    took = time.perf_counter() - t0
    meta = {"songs": len(songs), "queries": len(query_ids), "workers": args.workers, "ray": args.ray,
            "fingerprint_s_this_run": round(took, 1), "chunks": len(chunks)}
    (work / f"prepare-{len(songs)}.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


def write_queries(path: Path, query_ids: list[str], seed: int, split: str = "test") -> None:
    """Hum each melody (10 s from anywhere), track its pitch, fingerprint it at the 7 scales;
    the tracked contours go beside them (query_contours: the hybrid's DTW reads them)."""
    from humdex.learned.fingerprints import QUERY_SCALES, contour_frames, query_fingerprints
    from humdex.learned.model import load_model

    model = load_model(name="short")
    arrays: dict[str, np.ndarray] = {"ids": np.array(query_ids), "hop_s": np.array(model.config.hop_s)}
    contours: dict[str, np.ndarray] = {}
    for n, (qid, contour) in enumerate(zip(query_ids, hummed_contours(query_ids, seed, split))):
        scaled = query_fingerprints(model, contour_frames(contour, "crepe"), QUERY_SCALES, model.config.hop_s)
        for s, q in enumerate(scaled):
            arrays[f"q{n}_s{s}"] = q.fingerprints.astype(np.float32)
            arrays[f"q{n}_scale{s}"] = np.array(q.scale)
        contours[f"c{n}"], contours[f"hop{n}"] = contour.midi, np.array(contour.hop_s)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    np.savez(contours_path(path), ids=np.array(query_ids), **contours)


def hummed_contours(query_ids: list[str], seed: int, split: str):
    """The tracked pitch contour of a 10 s hum (from anywhere, microphone channel) of each melody;
    query n's hum is drawn from np.random.default_rng([seed, n])."""
    from humdex.frontend.pitch import query_contour
    from humdex.synth.benchmark import QueryPlan, query_from_score
    from humdex.synth.score import Score
    from humdex.training.melody_pool import load_pool

    by_id = {m.melody_id: m for m in load_pool(split)}
    plan = QueryPlan(duration_s=10.0, from_start=False)
    for n, qid in enumerate(query_ids):
        rend = query_from_score(Score.from_notes(by_id[qid].notes), "hum", np.random.default_rng([seed, n]), plan)
        yield query_contour(rend.audio, rend.sample_rate)


def contours_path(queries_path: Path) -> Path:
    return queries_path.with_name(queries_path.stem + "-contours.npz")


def query_contours(queries_path: Path, seed: int = 0, split: str = "test"):
    """The queries' tracked contours (written by write_queries; re-made for an older queries file)."""
    from humdex.frontend.contour import Contour

    path = contours_path(queries_path)
    if not path.is_file():
        with np.load(queries_path) as z:
            ids = [str(i) for i in z["ids"]]
        arrays = {}
        for n, c in enumerate(hummed_contours(ids, seed, split)):
            arrays[f"c{n}"], arrays[f"hop{n}"] = c.midi, np.array(c.hop_s)
        np.savez(path, ids=np.array(ids), **arrays)
    with np.load(path) as z:
        return [Contour(z[f"c{n}"], float(z[f"hop{n}"])) for n in range(len(z["ids"]))]


def load_songs(work: Path, n_songs: int, noise: float, seed: int = 0, keep: frozenset[str] = frozenset()):
    """(keys, sequences, n_distractors): the songs in `keep` and the first other fingerprinted
    songs up to n_songs, then perturbed copies of them (distractors) up to n_songs."""
    keys: list[str] = []
    seqs: list[np.ndarray] = []
    n_other = n_songs - len(keep)
    for path in sorted((work / "songs").glob("chunk-*.npz")):
        with np.load(path) as z:
            bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
            vectors = z["vectors"]
            for k, a, b in zip(z["keys"], bounds[:-1], bounds[1:]):
                if str(k) in keep or n_other > 0:
                    n_other -= str(k) not in keep
                    keys.append(str(k))
                    seqs.append(vectors[a:b])
        if len(keys) >= n_songs and (not keep or set(keep) <= set(keys)):
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


def load_queries(path: Path):
    from humdex.learned.fingerprints import ScaledQuery

    with np.load(path) as z:
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
    """A store whose k-NN searches add their CPU time (ms) to cpu_ms and keep their answer
    (last_hits)."""

    def __init__(self, store) -> None:
        self.store, self.cpu_ms, self.last_hits = store, 0.0, None

    def search(self, vectors: np.ndarray, k: int):
        t = time.process_time()
        self.last_hits = self.store.search(vectors, k)
        self.cpu_ms += 1000 * (time.process_time() - t)
        return self.last_hits

    def __len__(self) -> int:
        return len(self.store)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


class Replay:
    """A store that answers every search with the hits it was given (to re-count votes); the
    rest passes through to `store`."""

    def __init__(self, store, hits) -> None:
        self.store, self.hits = store, hits

    def search(self, vectors: np.ndarray, k: int):
        return self.hits

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


def built_store(args: argparse.Namespace, work: Path):
    """(store, build facts): the store of args.songs songs saved under work/stores by an earlier
    run (its build.json holds that run's build time), else built now and saved."""
    import faiss

    from humdex.learned.stores import FaissStore

    keep = frozenset(load_queries(Path(args.queries))[0]) if args.keep_queries else frozenset()
    folder = work / "stores" / (f"{args.songs}-{args.store.replace(':', '_')}"
                                + (f"-with-{Path(args.queries).stem}" if keep else ""))
    facts_path = folder / "build.json"
    if facts_path.is_file() and (folder / "vectors.npz").is_file():
        t0 = time.perf_counter()
        store = FaissStore.load(folder, mmap_sequences=args.mmap)
        facts = json.loads(facts_path.read_text())
        facts["load_store_s"] = round(time.perf_counter() - t0, 1)
        return store, facts
    t0 = time.perf_counter()
    keys, seqs, n_distractors = load_songs(work, args.songs, args.noise, keep=keep)
    load_s = time.perf_counter() - t0
    store = store_for(args.store, work, args.songs)
    faiss.omp_set_num_threads(args.build_threads)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(keys), 1000):
        store.add(keys[i:i + 1000], seqs[i:i + 1000])
    del seqs
    insert_s = time.perf_counter() - t0
    store.search(np.full((1, 128), 0.088, np.float32), 1)  # builds the index
    if hasattr(store, "wait_indexed"):  # Milvus: until every sealed segment has its index
        store.wait_indexed(timeout_s=4 * 3600)
    facts = {"build_s": round(time.perf_counter() - t0, 1), "build_cpu_s": round(time.process_time() - c0, 1),
             "insert_s": round(insert_s, 1),
             "build_threads": args.build_threads, "load_fingerprints_s": round(load_s, 1),
             "distractor_copies": n_distractors, "load_average_1min_at_build": round(os.getloadavg()[0], 1)}
    if isinstance(store, FaissStore):
        t0 = time.perf_counter()
        store.save(folder)
        facts["save_s"] = round(time.perf_counter() - t0, 1)
        facts["disk_bytes"] = (folder / "vectors.npz").stat().st_size
        facts_path.write_text(json.dumps(facts, indent=1))
    return store, facts


def song_references(work: Path, keys: list[str], seed: int = 0):
    """The classical matcher's ReferenceSet of the catalog's songs (row i = keys[i]), from the
    same melodies `prepare` fingerprinted (song_notes), as a catalog stores a MIDI song's. A
    distractor copy "id~n" has its source's melody (a cover with the same tune)."""
    from humdex.catalog.ingest import REFERENCE_HOP_S
    from humdex.classical.references import ReferenceSet
    from humdex.frontend.melody import notes_to_contour

    with np.load(work / "queries.npz") as z:
        query_ids = [str(i) for i in z["ids"]]
    base = [k.split("#")[0].split("~")[0] for k in keys]  # "id~n" copies, "id~n#c" replicas
    real = list(dict.fromkeys(base))
    songs = dict(song_notes(len(real), query_ids, seed))
    if not set(real) <= songs.keys():  # a catalog that keeps other queries' songs (--keep-queries)
        from humdex.training.melody_pool import load_pool

        songs = dict(song_notes(len(real) + len(load_pool()), query_ids, seed))
    refs = ReferenceSet.from_contours(
        [notes_to_contour(songs[k], REFERENCE_HOP_S).resample(REFERENCE_HOP_S).trimmed() for k in real])
    row = {k: i for i, k in enumerate(real)}
    rows = np.array([row[k] for k in base], np.int64)
    parts = [refs.select(rows[a:a + 100_000]) for a in range(0, len(rows), 100_000)]  # bounded temporaries
    if len(parts) == 1:
        return parts[0]
    lengths = np.concatenate([np.diff(p.offsets) for p in parts])
    return ReferenceSet(np.concatenate([p.midi for p in parts]), np.concatenate([p.voiced for p in parts]),
                        np.concatenate([[0], np.cumsum(lengths)]), refs.hop_s)


def no_match_row(rows, keys_of: dict[int, str], truth: str) -> dict:
    """A query's hybrid rows (row, score, ...) as no_match_records.rates reads them."""
    return {"truth": truth, "ids": [keys_of[r[0]] for r in rows], "scores": [float(r[1]) for r in rows]}


def no_match_rates(rows: list[dict], n_songs: int) -> dict:
    """The hybrid's "no match" rule (nomatch.config_for) on these queries with their song in the
    catalog, and with it taken out (its row dropped from the list, as benchmarks/no_match_records.py
    does): false accepts and right songs accepted; plus the rule fitted to these rows there."""
    from no_match_records import fit_rule, rates

    from humdex.nomatch import config_for

    rule = config_for("hybrid", n_songs=n_songs)
    fitted, fitted_rates = fit_rule(rows, rule)
    rounded = {k: round(v, 3) for k, v in rates(rows, rule).items()}
    return {"rule": [rule.min_score, rule.min_margin], **rounded,
            "fitted_rule": [fitted.min_score, fitted.min_margin],
            "fitted": {k: round(v, 3) for k, v in fitted_rates.items()}}


def fit_no_match(args: argparse.Namespace) -> None:
    """Fit the hybrid's "no match" rule on the no_match_rows of `measure` reports (pooled; false
    accepts <= --max-false-accept in every report), or with --rule apply one; rates per report."""
    from no_match_records import fit_rule, rates

    from humdex.nomatch import config_for

    reports = {f: json.loads(Path(f).read_text())["no_match_rows"] for f in args.reports}
    base = config_for("hybrid")
    if args.rule:
        rule = dataclasses.replace(base, min_score=args.rule[0], min_margin=args.rule[1])
    else:
        rule, _ = fit_rule([r for rows in reports.values() for r in rows], base, args.max_false_accept)
        while any(rates(rows, rule)["false_accept"] > args.max_false_accept for rows in reports.values()):
            rule = dataclasses.replace(rule, min_margin=round(rule.min_margin + 0.005, 6))
    print(json.dumps({"rule": [rule.min_score, rule.min_margin],
                      **{f: {k: round(v, 3) for k, v in rates(rows, rule).items()} for f, rows in reports.items()}},
                     indent=1))


def rank_in(rows, row: int | None) -> int:
    """1-based place of catalog row `row` among hybrid rows (row, score, ...); 0 when absent."""
    return next((i + 1 for i, r in enumerate(rows) if r[0] == row), 0)


def rss_now() -> dict[str, float]:
    """This process's resident memory now, MB: anonymous (its own RAM) and file-backed (pages of
    memory-mapped files, which the kernel can drop and re-read)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:", "VmHWM:")):
            name, kb = line.split(":")
            out[f"{name.lower()}_mb"] = round(int(kb.split()[0]) / 1024, 1)
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.median(values)), 1), "p95": round(float(np.percentile(values, 95)), 1)}


def hit_rates(ranks: list[int]) -> dict[str, float]:
    r = np.array(ranks)
    return {"top1": round(float(np.mean(r == 1)), 3), "top10": round(float(np.mean(r > 0)), 3),
            "mrr": round(float(np.mean(np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0))), 3)}


def real_songs(work: Path, limit: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """(keys, float16 sequences) of the songs `prepare` fingerprinted, at most `limit` (0: all)."""
    keys: list[str] = []
    seqs: list[np.ndarray] = []
    for path in sorted((work / "songs").glob("chunk-*.npz")):
        with np.load(path) as z:
            bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
            vectors = z["vectors"]
            keys += [str(k) for k in z["keys"]]
            seqs += [vectors[a:b] for a, b in itertools.pairwise(bounds)]
        if limit and len(keys) >= limit:
            break
    return keys[: limit or None], seqs[: limit or None]


def write_member(zf, name: str, array: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def write_song_table(zf, keys: list[str], lengths: np.ndarray) -> None:
    """The members of an IVF-PQ store's vectors.npz after its vectors and index (FaissStore's
    layout): song keys, per-song lengths, meta, and each vector's song and frame."""
    n_vectors = int(lengths.sum())
    meta = {"dim": 128, "exact_limit": 16_384, "kind": "ivfpq", "n_vectors": n_vectors, "codec": "pq"}
    write_member(zf, "keys", np.array(keys, dtype=str))
    write_member(zf, "slots", np.array(keys, dtype=str))
    write_member(zf, "lengths", lengths)
    write_member(zf, "meta", np.array(json.dumps(meta)))
    write_member(zf, "owner", np.repeat(np.arange(len(lengths), dtype=np.int64), lengths))
    write_member(zf, "frame", np.arange(n_vectors, dtype=np.int64) - np.repeat(
        np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths))


def save_build_facts(folder: Path, facts: dict) -> None:
    """facts + the store's disk bytes, this process's peak RSS and the load, to build.json."""
    facts = {**facts, "disk_bytes": (folder / "vectors.npz").stat().st_size,
             "peak_rss_mb_build": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
             "load_average_1min_at_build": round(os.getloadavg()[0], 1)}
    (folder / "build.json").write_text(json.dumps(facts, indent=1))
    print(json.dumps(facts))


def build_big(args: argparse.Namespace) -> None:
    """A FaissStore file (vectors.npz, the product's format) of args.songs songs too many to
    hold in RAM: the real fingerprinted songs, then DISTRACTORS (perturbed copies, as load_songs
    makes, of the real songs that no WORK/queries*.npz looks for) up to args.songs, streamed to
    disk song chunk by chunk while an IVF-PQ index (PQ_M-byte codes, the product's `faiss:pq`,
    with args.nlist lists) takes their vectors. The coarse quantizer is an HNSW graph over the
    list centroids (faiss "IVFn_HNSW32,PQm"): the product's exact quantizer would compare every
    vector with every centroid (51M x 4096 dot products, most of the build on two cores). Load it
    with FaissStore.load: the sequences (19 GB at 1M songs of 74 fingerprints) are then
    memory-mapped."""
    import zipfile

    import faiss

    from humdex.learned.stores import PQ_M, PQ_MAX_LISTS, PQ_TRAIN_MAX

    work = Path(args.work)
    faiss.omp_set_num_threads(args.build_threads)
    folder = work / "stores" / f"{args.songs}-bigpq"  # measure --store bigpq
    folder.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    keys_r, seqs_r = real_songs(work, args.real)
    n_real = len(keys_r)
    # song j < n_real is real song j; the others are copies of the real songs no query looks for
    # (a copy of a query's own song would be a near-twin of the right answer, not a distractor)
    sought = {i for path in work.glob("queries*.npz") if not path.stem.endswith("-contours")
              for i in load_queries(path)[0]}
    copyable = np.array([i for i, k in enumerate(keys_r) if k not in sought], np.int64)
    n_copies = args.songs - n_real
    source = np.concatenate([np.arange(n_real), copyable[np.arange(n_copies) % len(copyable)]])
    copy_no = np.concatenate([np.zeros(n_real, np.int64), 1 + np.arange(n_copies) // len(copyable)])
    lengths = np.array([len(seqs_r[i]) for i in source], np.int64)
    keys = [keys_r[i] if c == 0 else f"{keys_r[i]}~{c}" for i, c in zip(source, copy_no)]
    n_vectors = int(lengths.sum())
    # the product's number of lists (FaissStore._new_index): ~4 sqrt(N), at most PQ_MAX_LISTS
    nlist = args.nlist or int(np.clip(min(4 * np.sqrt(n_vectors), n_vectors / 39), 16, PQ_MAX_LISTS))
    index = faiss.index_factory(128, f"IVF{nlist}_HNSW32,PQ{PQ_M}", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.niter = args.niter
    # index_factory turns on polysemous training (not used by the product's IndexIVFPQ, nor by
    # its searches): 50 s of CPU on 16k vectors here
    ivf.do_polysemous_training = False
    flat = np.concatenate(seqs_r)
    rng = np.random.default_rng(0)
    n_train = min(len(flat), max(PQ_TRAIN_MAX, 39 * nlist))
    index.train(flat[np.sort(rng.permutation(len(flat))[:n_train])].astype(np.float32))
    del flat
    quantizer = faiss.downcast_index(ivf.quantizer)
    quantizer.hnsw.efSearch = args.add_ef  # assigning the vectors to lists: the build's bulk
    train_s = time.perf_counter() - t0
    tmp = folder / "vectors.tmp.npz"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("vectors.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_2_0(f, {"descr": "<f2", "fortran_order": False,
                                                     "shape": (n_vectors, 128)})
            for j0 in range(0, args.songs, args.chunk):
                part = []
                for j in range(j0, min(args.songs, j0 + args.chunk)):
                    seq = seqs_r[source[j]]
                    if copy_no[j]:
                        x = seq.astype(np.float32) + args.noise * rng.standard_normal(seq.shape, dtype=np.float32)
                        seq = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
                    part.append(seq)
                block = np.concatenate(part)
                f.write(block.tobytes())
                index.add(block.astype(np.float32))
                print(f"{min(args.songs, j0 + args.chunk)} songs, {index.ntotal} vectors, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
        add_s = time.perf_counter() - t0 - train_s
        quantizer.hnsw.efSearch = args.quantizer_ef  # for searches (saved with the index)
        write_member(zf, "index", faiss.serialize_index(index))
        del index
        write_song_table(zf, keys, lengths)
    tmp.replace(folder / "vectors.npz")
    facts = {"build_s": round(time.perf_counter() - t0, 1), "build_cpu_s": round(time.process_time() - c0, 1),
             "train_s": round(train_s, 1), "add_s": round(add_s, 1), "build_threads": args.build_threads,
             "real_songs": n_real, "distractor_copies": n_copies, "copied_songs": len(copyable),
             "noise": args.noise,
             "nlist": nlist, "niter": args.niter,
             "quantizer": f"HNSW32 (efSearch {args.add_ef} adding, {args.quantizer_ef} searching)"}
    save_build_facts(folder, facts)


def replicate_big(args: argparse.Namespace) -> None:
    """A store of args.songs songs made by REPLICATING a `big` store of fewer (args.source):
    copy c of its song "key" is "key#c", its float16 sequence repeated byte for byte in the new
    file, and its index entries (list, 32-byte PQ code) repeated with args.flip of the 32 code
    bytes of each entry set at random, so that copies are not exact ties in the k-NN stage. No
    vector is assigned or encoded again: this measures what a catalog of that size costs to hold
    and to search (RAM, disk, k-NN and rerank time), not its hit rates (the rerank sees exact
    copies). Written because `big` itself, under nice 19 on the shared machine, added 20,000
    songs in 5 minutes at 1M (4 CPU-seconds a minute)."""
    import zipfile

    import faiss

    from humdex.learned.stores import PQ_M, _mapped_member

    work = Path(args.work)
    src = work / "stores" / f"{args.source}-bigpq" / "vectors.npz"
    folder = work / "stores" / f"{args.songs}-bigpq"
    folder.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    with np.load(src) as z:
        keys0, lengths0 = [str(k) for k in z["keys"]], z["lengths"].astype(np.int64)
    n0, v0 = len(keys0), int(lengths0.sum())
    index = faiss.deserialize_index(_mapped_member(src, "index"))
    ivf = faiss.extract_index_ivf(index)
    invlists = ivf.invlists
    n_copies = -(-args.songs // n0)  # the source itself is copy 0
    n_songs_last = args.songs - (n_copies - 1) * n0
    v_last = int(lengths0[:n_songs_last].sum())
    rng = np.random.default_rng(0)
    for lst in range(ivf.nlist):
        n = invlists.list_size(lst)
        if n == 0:
            continue
        ids = faiss.rev_swig_ptr(invlists.get_ids(lst), n).copy()
        codes = faiss.rev_swig_ptr(invlists.get_codes(lst), n * PQ_M).copy().reshape(n, PQ_M)
        for c in range(1, n_copies):
            keep = ids < (v0 if c < n_copies - 1 else v_last)
            new_codes = codes[keep].copy()
            rows = np.repeat(np.arange(len(new_codes)), args.flip)
            cols = rng.integers(0, PQ_M, len(rows))
            new_codes[rows, cols] = rng.integers(0, 256, len(rows), dtype=np.uint8)
            new_ids = ids[keep] + c * v0
            invlists.add_entries(lst, len(new_ids), faiss.swig_ptr(new_ids), faiss.swig_ptr(new_codes))
    n_vectors = (n_copies - 1) * v0 + v_last
    index.ntotal = ivf.ntotal = n_vectors
    index_s = time.perf_counter() - t0
    seq0 = _mapped_member(src, "vectors", check=False)
    lengths = np.concatenate([lengths0] * (n_copies - 1) + [lengths0[:n_songs_last]])
    keys = [f"{k}#{c}" if c else k for c in range(n_copies) for k in keys0][: args.songs]
    tmp = folder / "vectors.tmp.npz"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("vectors.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_2_0(f, {"descr": "<f2", "fortran_order": False,
                                                     "shape": (n_vectors, 128)})
            for c in range(n_copies):
                end = v0 if c < n_copies - 1 else v_last
                for a in range(0, end, 1 << 20):
                    f.write(np.ascontiguousarray(seq0[a:min(end, a + (1 << 20))]).tobytes())
        write_member(zf, "index", faiss.serialize_index(index))
        del index
        write_song_table(zf, keys, lengths)
    tmp.replace(folder / "vectors.npz")
    source_facts = json.loads((src.parent / "build.json").read_text())
    facts = {"replicated_from": args.source, "replicate_s": round(time.perf_counter() - t0, 1),
             "replicate_cpu_s": round(time.process_time() - c0, 1), "index_copy_s": round(index_s, 1),
             "code_bytes_flipped": args.flip, "real_songs": source_facts["real_songs"],
             "distractor_copies": args.songs - source_facts["real_songs"],
             "exact_sequence_copies": args.songs - n0, "nlist": ivf.nlist}
    save_build_facts(folder, facts)


def split_queries(args: argparse.Namespace) -> None:
    """Hums of args.n melodies of args.split (e.g. pool validation: for tuning, never the test
    melodies or MIREX's), written as `prepare` writes the test queries."""
    from humdex.training.melody_pool import load_pool

    melodies = load_pool(args.split)
    rng = np.random.default_rng(args.seed)
    ids = [melodies[i].melody_id for i in sorted(rng.choice(len(melodies), args.n, replace=False))]
    write_queries(Path(args.out), ids, args.seed, args.split)


def measure(args: argparse.Namespace) -> None:
    """Build (or load) the store, then run the queries through the learned search (k-NN votes ->
    candidates -> rerank, the product's search_store) and, with --hybrid, the product's hybrid
    stages on its answer (humdex.hybrid.classical_stage + weighted_union: `auto` on a melody
    catalog). Each query's true song's place among the vote-ranked candidates is recorded too."""
    import faiss

    from humdex.hybrid import (
        HYBRID_DTW_CANDIDATES,
        classical_stage,
        dtw_rows,
        dtw_weight_for,
        weighted_union,
    )
    from humdex.learned.fingerprints import KNN_K, length_power_for, scale_votes, search_store
    from humdex.learned.search import LearnedConfig
    from humdex.learned.stores import FaissStore
    from humdex.nomatch import COHORT

    work = Path(args.work)
    store, facts = built_store(args, work)
    if args.build_only:
        print(json.dumps(facts))
        return
    threads = int(os.environ.get("HUMDEX_THREADS", "1"))
    faiss.omp_set_num_threads(threads)
    index = getattr(store, "_index", None)
    if args.ef_search and hasattr(index, "hnsw"):
        index.hnsw.efSearch = args.ef_search
    if args.nprobe and hasattr(index, "nprobe"):
        index.nprobe = args.nprobe
    config = LearnedConfig(dtw_candidates=HYBRID_DTW_CANDIDATES)
    args.k = args.k or KNN_K
    if args.length_power is None:
        args.length_power = length_power_for(len(store))
    refs, row_of = None, {}
    if args.hybrid:
        t0 = time.perf_counter()
        keys = store.keys()
        refs = song_references(work, keys)
        row_of = {k: i for i, k in enumerate(keys)}
        facts["references_s"] = round(time.perf_counter() - t0, 1)
    queries_path = Path(args.queries) if args.queries else work / "queries.npz"
    ids, queries, hop_s = load_queries(queries_path)
    contours = query_contours(queries_path, split=args.split) if args.hybrid else [None] * len(ids)
    present = set(store.keys())  # a validation melody may lie beyond a small catalog's songs
    kept = [n for n, qid in enumerate(ids) if qid in present]
    ids, queries, contours = [ids[n] for n in kept], [queries[n] for n in kept], [contours[n] for n in kept]
    limit = slice(args.offset, args.offset + args.limit if args.limit else None)
    ranks, hybrid_ranks, cand_ranks = [], [], []
    # a song's rerank score does not depend on the other candidates, so one rerank of N
    # candidates gives the top-10 for every smaller n: its list cut to the n best-voted songs
    n_cuts = [n for n in (100, 200, 300, 500, 1000, 2000) if n < args.candidates] + [args.candidates]
    cut_ranks: dict[int, list[int]] = {n: [] for n in n_cuts}
    dumped: list[dict] = []
    fused_ranks: list[int] = []
    pools = [int(x) for x in args.dtw_pools.split(",") if x] if args.hybrid else []
    pool_ranks: dict[int, list[int]] = {n: [] for n in pools}
    fused_weights = [float(x) for x in args.fused_hybrid.split(",") if x] if args.hybrid else []
    fused_hybrid_ranks: dict[float, list[int]] = {w: [] for w in fused_weights}
    weighted_hybrid_ranks: dict[float, list[int]] = {w: [] for w in fused_weights}
    # the hybrid's best songs and scores per query, for the "no match" rule (no_match_rates)
    decided: list[dict] = []
    decided_by_weight: dict[float, list[dict]] = {w: [] for w in fused_weights}
    keys_of = {i: k for k, i in row_of.items()}
    ann_ms, rerank_ms, dtw_ms, ann_cpu_ms, learned_cpu_ms, dtw_cpu_ms = [], [], [], [], [], []
    for qid, q, contour in zip(ids[limit], queries[limit], contours[limit]):
        timing: dict[str, float] = {}
        timed = CpuTimed(store)
        cpu0 = time.process_time()
        matches = search_store(timed, q, hop_s, top=args.candidates, n_candidates=args.candidates,
                               song_hop_s=SONG_HOP_S, timing=timing, k=args.k, vote=args.vote,
                               length_power=args.length_power)
        learned_cpu_ms.append(1000 * (time.process_time() - cpu0))
        top = [m.song_key for m in matches[:10]]
        ranks.append(top.index(qid) + 1 if qid in top else 0)
        ann_ms.append(timing["ann"])
        rerank_ms.append(timing["rerank"])
        ann_cpu_ms.append(timed.cpu_ms)
        keys, votes = scale_votes(Replay(store, timed.last_hits), q, args.k, args.vote,
                                  args.length_power)
        by_votes = [keys[i] for i in np.argsort(-votes.max(axis=1), kind="stable")] if keys else []
        cand_ranks.append(by_votes.index(qid) + 1 if qid in by_votes else 0)
        score_of = {m.song_key: m.score for m in matches}
        vote_of = dict(zip(keys, votes.max(axis=1))) if keys else {}
        # rerank score + w * votes / the best song's votes (benchmarks/scale_fusion.py; w = 0.3
        # chosen on pool-validation hums at 9,500 songs): not the product's ranking
        top_votes = max(vote_of.values(), default=1.0) or 1.0
        fused = sorted(score_of, key=lambda k: -(score_of[k] + args.vote_weight * vote_of.get(k, 0) / top_votes))
        fused_ranks.append(fused[:10].index(qid) + 1 if qid in fused[:10] else 0)
        if args.dump:
            cands = by_votes[: args.candidates]
            dumped.append({"id": qid, "keys": cands, "votes": [float(vote_of[k]) for k in cands],
                           "scores": [float(score_of.get(k, -1.0)) for k in cands]})
        for n in n_cuts:
            allowed = set(by_votes[:n])
            cut = [m.song_key for m in matches if m.song_key in allowed][:10]
            cut_ranks[n].append(cut.index(qid) + 1 if qid in cut else 0)
        if refs is not None:
            cpu0, t0 = time.process_time(), time.perf_counter()
            query_s = contour.duration_s
            learned = [(row_of[m.song_key], m.score, m.offset_s, m.offset_s + query_s * m.ratio)
                       for m in matches if m.song_key in row_of]
            scanned = dtw_rows(contour, refs, False, config.classical_candidates) \
                if len(refs) <= config.full_scan_songs else None
            pool = [row_of[k] for k in by_votes[: config.dtw_pool] if k in row_of]  # as hybrid_search
            dtw = classical_stage(contour, refs, [r[0] for r in learned], False, config, scanned, pool)
            rows = weighted_union(dtw, learned, dtw_weight_for(config, len(refs), False))[:COHORT + 1]
            dtw_ms.append(1000 * (time.perf_counter() - t0))
            dtw_cpu_ms.append(1000 * (time.process_time() - cpu0))
            hybrid_ranks.append(rank_in(rows[:10], row_of.get(qid)))
            decided.append(no_match_row(rows, keys_of, qid))
            # the same union with the learned rows scored as learned_vote_fused ranks them
            learned_fused = [(r[0], r[1] + args.vote_weight * vote_of.get(m.song_key, 0) / top_votes, r[2], r[3])
                             for r, m in zip(learned, [m for m in matches if m.song_key in row_of])]
            for w in fused_weights:
                for got, rows in ((fused_hybrid_ranks, weighted_union(dtw, learned_fused, w)[:10]),
                                  (weighted_hybrid_ranks, weighted_union(dtw, learned, w)[:COHORT + 1])):
                    got[w].append(rank_in(rows[:10], row_of.get(qid)))
                decided_by_weight[w].append(no_match_row(rows, keys_of, qid))
            # the classical FFT stage picking from the n best-voted songs instead of the reranked ones
            reranked = set(by_votes[:config.n_candidates])
            learned_n = [r for r, m in zip(learned, [m for m in matches if m.song_key in row_of])
                         if m.song_key in reranked]
            for n in pools:
                among = np.unique([row_of[k] for k in by_votes[:n]] + [r[0] for r in learned_n])
                also = np.array([r[0] for r in learned_n[: config.dtw_candidates]], np.int64)
                dtw = dtw_rows(contour, refs, False, config.pooled_candidates, among=among, also=also)
                rows = weighted_union(dtw, learned_n, dtw_weight_for(config, len(refs), False))[:10]
                pool_ranks[n].append(rank_in(rows, row_of.get(qid)))
    c = np.array(cand_ranks)
    report = {
        "songs": len(store), "distractor_copies": facts.get("distractor_copies", 0), "store": args.store,
        "index_kind": getattr(store, "kind", None), "mmap_sequences": args.mmap,
        "queries_file": str(queries_path), "queries": len(ranks), "query_offset": args.offset,
        "vectors": store.n_vectors, "threads": threads,
        "knn_k": args.k, "vote": args.vote, "length_power": args.length_power, "candidates": args.candidates,
        "ef_search": getattr(getattr(index, "hnsw", None), "efSearch", None),
        "nprobe": getattr(index, "nprobe", None),
        "learned": hit_rates(ranks),
        "true_song_in_candidates": {f"@{n}": round(float(np.mean((c > 0) & (c <= n))), 3)
                                    for n in (50, 100, 200, 500, 1000)},
        "true_song_voted": round(float(np.mean(c > 0)), 3),
        "learned_by_candidates": {str(n): hit_rates(r) for n, r in cut_ranks.items()},
        "learned_vote_fused": {"w": args.vote_weight, **hit_rates(fused_ranks)},
        "ann_ms": percentiles(ann_ms), "rerank_ms": percentiles(rerank_ms),
        "learned_ms_p50": round(float(np.median(np.add(ann_ms, rerank_ms))), 1),
        # CPU time of this process (all its threads): what the search costs, whatever else runs
        "knn_cpu_ms": percentiles(ann_cpu_ms), "learned_cpu_ms": percentiles(learned_cpu_ms),
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **rss_now(), **facts,
    }
    if refs is not None:
        report.update(hybrid=hit_rates(hybrid_ranks),
                      hybrid_by_dtw_pool={str(n): hit_rates(r) for n, r in pool_ranks.items()}, dtw_ms=percentiles(dtw_ms), dtw_cpu_ms=percentiles(dtw_cpu_ms),
                      hybrid_vote_fused={str(w): hit_rates(r) for w, r in fused_hybrid_ranks.items()},
                      hybrid_by_weight={str(w): hit_rates(r) for w, r in weighted_hybrid_ranks.items()},
                      no_match=no_match_rates(decided, len(store)), no_match_rows=decided,
                      no_match_by_weight={str(w): no_match_rates(r, len(store)) for w, r in decided_by_weight.items()},
                      hybrid_ms_p50=round(float(np.median(np.add(np.add(ann_ms, rerank_ms), dtw_ms))), 1),
                      hybrid_cpu_ms=percentiles(list(np.add(learned_cpu_ms, dtw_cpu_ms))),
                      references_bytes=int(refs.midi.nbytes + refs.voiced.nbytes + refs.offsets.nbytes),
                      dtw_full_scan=len(refs) <= config.full_scan_songs, dtw_pool=config.dtw_pool)
    if isinstance(store, FaissStore):
        index_bytes = len(faiss.serialize_index(store._index)) if store._index is not None else 0
        seq_bytes = sum(s.nbytes for s in store._seqs.values())
        report.update(index_bytes=index_bytes, sequence_bytes=seq_bytes,
                      ram_bytes_per_song=round((index_bytes + (0 if args.mmap else seq_bytes)) / len(store)),
                      disk_bytes_per_song=round(facts["disk_bytes"] / len(store)) if "disk_bytes" in facts else None)
    print(json.dumps(report), flush=True)
    if args.dump:
        Path(args.dump).write_text(json.dumps(dumped))
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
    m = sub.add_parser("measure", help="build (or load) one store of --songs songs and query it")
    m.add_argument("--songs", type=int, required=True)
    m.add_argument("--store", default="faiss")
    m.add_argument("--noise", type=float, default=0.05, help="distractor copies: noise per dimension")
    m.add_argument("--queries", default=None, help="queries file (default: WORK/queries.npz)")
    m.add_argument("--split", default="test", help="the pool split the queries' melodies come from")
    m.add_argument("--limit", type=int, default=0, help="queries to run (0: all)")
    m.add_argument("--offset", type=int, default=0, help="first query to run")
    m.add_argument("--hybrid", action="store_true", help="also run the hybrid's DTW stages (auto)")
    m.add_argument("--candidates", type=int, default=200, help="songs the rerank scores")
    m.add_argument("--k", type=int, default=0, help="neighbours per query fingerprint (0: the product's, fingerprints.KNN_K)")
    m.add_argument("--keep-queries", action="store_true",
                   help="the catalog holds the --queries' songs and the first others up to --songs")
    m.add_argument("--vote", default="similarity", choices=("similarity", "margin"),
                   help="k-NN vote weight (fingerprints.scale_votes)")
    m.add_argument("--length-power", type=float, default=None,
                   help="votes / song windows ** this (fingerprints.scale_votes; default: the product's, length_power_for)")
    m.add_argument("--ef-search", type=int, default=0, help="HNSW efSearch (0: the product's)")
    m.add_argument("--nprobe", type=int, default=0, help="IVF lists searched (0: the product's)")
    m.add_argument("--mmap", action="store_true", help="load a saved store with memory-mapped sequences")
    m.add_argument("--build-threads", type=int, default=1)
    m.add_argument("--vote-weight", type=float, default=0.3, help="learned_vote_fused: votes' weight")
    m.add_argument("--fused-hybrid", default="", help="hybrid: also the union at these DTW weights, "
                   "with the learned scores as they are and as learned_vote_fused ranks them, e.g. 0.4,0.55,0.7")
    m.add_argument("--build-only", action="store_true", help="build and save the store, no queries")
    m.add_argument("--out", default=None)
    m.add_argument("--dtw-pools", default="", help="hybrid: also let the classical stage pick from "
                   "the N best-voted songs, for each N of this comma list")
    m.add_argument("--dump", default=None, help="JSON file: each query's candidates, votes, rerank scores")
    g = sub.add_parser("big", help="stream a store of --songs songs (real + perturbed copies) to disk")
    g.add_argument("--songs", type=int, default=1_000_000)
    g.add_argument("--real", type=int, default=0, help="real songs to use (0: all fingerprinted)")
    g.add_argument("--noise", type=float, default=0.05)
    g.add_argument("--nlist", type=int, default=0, help="IVF lists (0: the product's rule)")
    g.add_argument("--add-ef", type=int, default=16, help="quantizer efSearch while adding")
    g.add_argument("--niter", type=int, default=10, help="k-means iterations of the list centroids")
    g.add_argument("--quantizer-ef", type=int, default=64)
    g.add_argument("--chunk", type=int, default=20000, help="songs per streamed block")
    g.add_argument("--build-threads", type=int, default=1)
    r = sub.add_parser("replicate", help="a larger store made by replicating a `big` one (cost only)")
    r.add_argument("--songs", type=int, default=1_000_000)
    r.add_argument("--source", type=int, default=90_000)
    r.add_argument("--flip", type=int, default=4, help="code bytes set at random per copied entry")
    q = sub.add_parser("queries", help="write hummed queries of another pool split (e.g. validation)")
    q.add_argument("--split", default="validation")
    q.add_argument("--n", type=int, default=100)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--out", required=True)
    f = sub.add_parser("no-match", help="fit (or apply) the hybrid's no-match rule on measure reports")
    f.add_argument("reports", nargs="+", help="measure --hybrid reports (their no_match_rows)")
    f.add_argument("--max-false-accept", type=float, default=0.05)
    f.add_argument("--rule", type=float, nargs=2, default=None, metavar=("MIN_SCORE", "MIN_MARGIN"))
    for sp in (a, m, q, g, r):
        sp.add_argument("--work", default=str(WORK))
    args = p.parse_args(argv)
    {"prepare": prepare, "measure": measure, "queries": split_queries, "big": build_big, "replicate": replicate_big,
     "no-match": fit_no_match}[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
