"""Vector store: add/remove/search consistency, exact vs HNSW, save/load; rerank and fusion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from humdex.errors import CatalogError
from humdex.learned.fingerprints import (
    Match,
    candidate_songs,
    fuse,
    search_store,
    sequence_correlation,
)
from humdex.learned.stores import FaissStore, NumpyFlatIP


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def songs(n: int, dim: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"s{i}": unit(rng.normal(size=(int(rng.integers(12, 30)), dim))) for i in range(n)}


def test_add_search_remove_consistency() -> None:
    data = songs(20)
    store = FaissStore(dim=16)
    store.add(list(data), list(data.values()))
    assert len(store) == 20 and store.n_vectors == sum(len(v) for v in data.values())
    hits = store.search(data["s3"][4:6], k=3)
    assert list(hits.song_keys[:, 0]) == ["s3", "s3"] and list(hits.frames[:, 0]) == [4, 5]
    assert np.allclose(hits.scores[:, 0], 1.0, atol=1e-2)
    assert store.remove(["s3", "nope"]) == 1
    hits = store.search(data["s3"][4:6], k=3)
    assert "s3" not in set(hits.song_keys.ravel())
    store.add(["s3"], [data["s3"]])  # re-add
    assert store.search(data["s3"][:1], 1).song_keys[0, 0] == "s3"


def test_hnsw_for_large_stores_agrees_with_exact() -> None:
    data = songs(40, seed=1)
    exact, approx = FaissStore(dim=16), FaissStore(dim=16, exact_limit=100)
    for st in (exact, approx):
        st.add(list(data), list(data.values()))
    assert exact.kind == "flat" and approx.kind == "hnsw"
    q = data["s7"][:5]
    assert list(exact.search(q, 1).song_keys[:, 0]) == list(approx.search(q, 1).song_keys[:, 0])


def test_save_load_round_trip(tmp_path) -> None:
    data = songs(12, seed=2)
    for limit in (10_000, 50):
        store = FaissStore(dim=16, exact_limit=limit)
        store.add(list(data), list(data.values()))
        q = unit(np.random.default_rng(3).normal(size=(4, 16)))
        before = store.search(q, 5)
        store.save(tmp_path / str(limit))
        loaded = FaissStore.load(tmp_path / str(limit))
        after = loaded.search(q, 5)
        assert loaded.keys() == store.keys() and loaded.kind == store.kind
        assert (before.song_keys == after.song_keys).all()
        assert np.allclose(before.scores, after.scores, atol=1e-6)
        assert np.array_equal(loaded.sequence("s1"), store.sequence("s1"))
    with pytest.raises(CatalogError):
        FaissStore.load(tmp_path / "missing")


def test_numpy_fallback_matches_faiss() -> None:
    x = unit(np.random.default_rng(4).normal(size=(50, 8)))
    idx = NumpyFlatIP(8)
    idx.add(x)
    scores, ids = idx.search(x[:3], 4)
    assert list(ids[:, 0]) == [0, 1, 2] and np.allclose(scores[:, 0], 1.0)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_sequence_correlation_finds_offset_and_tempo() -> None:
    song = unit(np.random.default_rng(5).normal(size=(60, 16)))
    query = song[20:32]
    score, offset, ratio = sequence_correlation(query, song)
    assert offset == 20 and ratio == 1.0 and np.isclose(score, 1.0, atol=1e-5)
    fast = song[np.round(10 + np.arange(10) * 1.25).astype(int)]  # the query runs 1.25x slower
    score, offset, ratio = sequence_correlation(fast, song)
    assert offset == 10 and ratio == 1.25 and score > 0.99
    # a query hanging past the song's end is penalised (missing windows count 0)
    assert sequence_correlation(song[50:], song[:55])[0] < 0.6


def test_search_store_ranks_the_source_song_first() -> None:
    data = songs(30, seed=6)
    store = FaissStore(dim=16)
    store.add(list(data), list(data.values()))
    rng = np.random.default_rng(7)
    query = unit(data["s11"][2:10] + 0.3 * rng.normal(size=(8, 16)))
    assert candidate_songs(store, query)[0][0] == "s11"
    top = search_store(store, query, hop_s=0.25, top=5)
    assert top[0].song_key == "s11" and top[0].offset_s == 0.5 and len(top) == 5


def test_fuse_averages_scores() -> None:
    a = [Match("x", 0.9, 1.0, 1.0), Match("y", 0.5, 0.0, 1.0)]
    b = [Match("y", 0.95, 2.0, 1.0), Match("z", 0.2, 0.0, 1.0)]
    fused = fuse([a, b])
    assert [m.song_key for m in fused] == ["y", "x", "z"]
    assert np.isclose(fused[0].score, (0.5 + 0.95) / 2)
    assert np.isclose(fused[1].score, (0.9 + 0.2) / 2)  # missing -> worst score seen


def test_rerank_with_songs_at_a_coarser_hop() -> None:
    song = unit(np.random.default_rng(8).normal(size=(80, 16)))
    query = song[20:40]  # query windows every hop; the store keeps every second song window
    coarse = song[::2]
    score, offset, _ratio = sequence_correlation(query[::2], coarse, step=1.0)
    assert offset == 10 and score > 0.99
    store = FaissStore(dim=16)
    store.add(["a", "b"], [coarse, unit(np.random.default_rng(9).normal(size=(40, 16)))])
    top = search_store(store, query, hop_s=0.25, song_hop_s=0.5, top=2)
    # half the query windows meet their own song window (random neighbours share nothing here)
    assert top[0].song_key == "a" and top[0].offset_s == 5.0 and top[0].score > 0.45 > top[1].score


def test_incremental_changes_answer_like_a_fresh_build(tmp_path) -> None:
    data = songs(40, seed=11)
    keys = list(data)
    live = FaissStore(dim=16, exact_limit=100)  # HNSW from the start
    live.add(keys[:30], [data[k] for k in keys[:30]])
    live.search(data["s0"][:1], 1)  # builds the index
    index = live._index
    live.add(keys[30:], [data[k] for k in keys[30:]])  # appended, not rebuilt
    live.remove(["s5", "s31"])
    live.add(["s7"], [data["s7"][::-1]])  # replaced: old vectors become tombstones
    assert live._index is index and 0 < live.dead_share <= 0.25
    fresh = FaissStore(dim=16, exact_limit=100)
    kept = live.keys()
    fresh.add(kept, [live.sequence(k) for k in kept])
    q = np.concatenate([data["s7"][:3], data["s5"][:2], data["s33"][:2]])
    a, b = live.search(q, 4), fresh.search(q, 4)
    assert (a.song_keys == b.song_keys).all() and np.allclose(a.scores, b.scores, atol=1e-5)
    assert "s5" not in set(a.song_keys.ravel()) and a.song_keys[0, 0] == "s7"
    assert list(a.frames[:3, 0]) == [len(data["s7"]) - 1 - i for i in range(3)]  # new s7 is reversed
    live.save(tmp_path / "st")  # saved with its tombstones and id map: loads without a rebuild
    loaded = FaissStore.load(tmp_path / "st")
    assert loaded._index is not None and loaded.dead_share == live.dead_share
    c = loaded.search(q, 4)
    assert (c.song_keys == a.song_keys).all() and np.allclose(c.scores, a.scores, atol=1e-5)
    live.remove(keys[:12])  # past MAX_DEAD_SHARE: rebuilt on the next search
    assert live._index is None
    assert live.search(data["s20"][:1], 1).song_keys[0, 0] == "s20" and live.dead_share == 0


def test_scale_votes_add_up_per_scale_and_rerank_reports_the_tempo() -> None:
    from humdex.learned.fingerprints import ScaledQuery, scale_votes

    data = songs(10, seed=12)
    store = FaissStore(dim=16)
    store.add(list(data), list(data.values()))
    rng = np.random.default_rng(13)
    right = ScaledQuery(0.5, data["s4"][3:8])  # 5 fingerprints that are s4's own
    noise = ScaledQuery(2.0, unit(rng.normal(size=(6, 16))))  # windows of nothing
    keys, votes = scale_votes(store, [right, noise], k=3)
    assert votes.shape == (len(keys), 2)
    assert keys[int(np.argmax(votes[:, 0]))] == "s4" and np.isclose(votes[keys.index("s4"), 0], 5.0, atol=1e-2)
    hits = store.search(noise.fingerprints, 3)
    for key in ("s1", "s8"):  # a song's votes at a scale: its best similarity per fingerprint, summed
        expect = sum(max([max(float(sc), 0.0) for k, sc in zip(row_k, row_s) if k == key], default=0.0)
                     for row_k, row_s in zip(hits.song_keys, hits.scores))
        got = votes[keys.index(key), 1] if key in keys else 0.0
        assert np.isclose(got, expect, atol=1e-5)
    top = search_store(store, [right, noise], hop_s=0.25, top=1)
    assert top[0].song_key == "s4" and top[0].offset_s == 0.75 and top[0].ratio == 0.5


def test_a_catalog_no_bigger_than_the_candidate_list_is_reranked_whole() -> None:
    data = songs(12, seed=21)
    store = FaissStore(dim=16)
    store.add(list(data), list(data.values()))
    query = data["s5"][2:9]
    top = search_store(store, query, hop_s=0.25, top=12, n_candidates=12, k=1)  # 1 neighbour: few songs voted
    assert sorted(m.song_key for m in top) == sorted(data) and top[0].song_key == "s5"
    assert np.isclose(top[0].score, 1.0, atol=1e-2)
    few = search_store(store, query, hop_s=0.25, top=12, n_candidates=11, k=1)  # bigger than the list: voted only
    assert few[0].song_key == "s5" and len(few) < 12


def test_search_store_divides_a_large_catalogs_votes_by_song_length(monkeypatch) -> None:
    from humdex.learned import fingerprints
    from humdex.learned.fingerprints import KNN_K, LENGTH_POWER_LARGE, length_power_for

    large = fingerprints.LARGE_CATALOG_SONGS
    assert length_power_for(large) == 0.0 and length_power_for(large + 1) == LENGTH_POWER_LARGE > 0
    data = songs(12, seed=5)
    store = FaissStore(dim=16)
    store.add(list(data), list(data.values()))
    asked: list[tuple[int, float]] = []
    votes = fingerprints.scale_votes
    monkeypatch.setattr(fingerprints, "scale_votes",
                        lambda st, q, k, vote, power: asked.append((k, power)) or votes(st, q, k, vote, power))
    search_store(store, data["s1"][:4], hop_s=0.25)
    monkeypatch.setattr(fingerprints, "LARGE_CATALOG_SONGS", 10)  # these 12 songs: a large catalog
    top = search_store(store, data["s1"][:4], hop_s=0.25)
    search_store(store, data["s1"][:4], hop_s=0.25, k=7, length_power=0.0)
    assert asked == [(KNN_K, 0.0), (KNN_K, LENGTH_POWER_LARGE), (7, 0.0)]
    assert top[0].song_key == "s1"


def test_margin_votes_discount_a_crowd_of_alike_neighbours() -> None:
    from humdex.learned.fingerprints import scale_votes
    from humdex.learned.stores import Hits

    class Answer:  # a store that answers every search with these neighbours
        def __init__(self, hits: Hits) -> None:
            self.hits = hits

        def search(self, vectors: np.ndarray, k: int) -> Hits:
            return self.hits

    # 4 query fingerprints, 3 neighbours each. "hub" is among every row's neighbours at a
    # similarity close to the row's 3rd; "true" stands out in 2 rows only.
    keys = np.array([["true", "hub", "x"], ["true", "hub", "y"], ["hub", "x", "y"], ["hub", "y", "x"]])
    scores = np.array([[0.95, 0.72, 0.70], [0.93, 0.71, 0.70], [0.74, 0.73, 0.72], [0.75, 0.74, 0.73]],
                      np.float32)
    store = Answer(Hits(scores, keys, np.zeros(keys.shape, np.int64)))
    query = np.zeros((4, 16), np.float32)
    by_similarity = dict(zip(*scale_votes(store, query, k=3)))
    assert max(by_similarity, key=lambda key: by_similarity[key][0]) == "hub"  # 2.92 against 1.88
    by_margin = dict(zip(*scale_votes(store, query, k=3, vote="margin")))
    assert max(by_margin, key=lambda key: by_margin[key][0]) == "true"
    assert np.isclose(by_margin["true"][0], 0.25 + 0.23) and np.isclose(by_margin["hub"][0], 0.02 + 0.01 + 0.02 + 0.02)
    with pytest.raises(ValueError, match="unknown vote"):
        scale_votes(store, query, k=3, vote="most")


def test_length_power_divides_a_songs_votes_by_its_windows() -> None:
    from humdex.learned.fingerprints import scale_votes

    data = songs(8, seed=3)
    store = FaissStore(dim=16)
    store.add(list(data), list(data.values()))
    lengths = dict(zip(data, store.window_counts(list(data))))
    assert lengths == {k: len(v) for k, v in data.items()}
    query = unit(np.random.default_rng(4).normal(size=(9, 16)))
    keys, plain = scale_votes(store, query, k=4)
    keys_p, per_root = scale_votes(store, query, k=4, length_power=0.5)
    assert keys_p == keys and len(keys) > 2
    np.testing.assert_allclose(per_root[:, 0], plain[:, 0] / np.sqrt([lengths[k] for k in keys]), rtol=1e-6)
    # a long song that collects chance votes from every fingerprint loses to a short one that matches
    long_song = unit(np.random.default_rng(5).normal(size=(400, 16)))
    store.add(["long"], [long_song])
    assert "long" in keys_of_best(scale_votes(store, query, k=4), 2)
    assert "long" not in keys_of_best(scale_votes(store, query, k=4, length_power=1.0), 2)


def keys_of_best(voted: tuple[list[str], np.ndarray], n: int) -> list[str]:
    keys, votes = voted
    return [keys[i] for i in np.argsort(-votes[:, 0], kind="stable")[:n]]


def test_melody_and_large_catalogs_weigh_the_dtw_more() -> None:
    from humdex.hybrid import dtw_weight_for
    from humdex.learned.search import LearnedConfig

    config = LearnedConfig()
    n, big = config.full_scan_songs, config.full_scan_songs + 1
    assert dtw_weight_for(config, n, False, performed=True) == config.dtw_weight_performed
    assert dtw_weight_for(config, n, False) == dtw_weight_for(config, big, False, performed=True) \
        == config.dtw_weight > config.dtw_weight_performed
    assert dtw_weight_for(config, big, True) == dtw_weight_for(config, 10, True, performed=True) \
        == config.dtw_weight_from_start


def test_weighted_union_of_dtw_and_learned_rankings() -> None:
    from humdex.hybrid import weighted_union

    dtw = [(1, 0.8, 0.0, 5.0), (2, 0.6, 1.0, 6.0), (3, 0.2, 2.0, 7.0)]
    learned = [(2, 0.9, 1.5, 6.5), (4, 0.7, 3.0, 8.0), (1, 0.1, 0.5, 5.5)]
    rows = weighted_union(dtw, learned, 0.5)
    got = {r[0]: r for r in rows}
    assert np.isclose(got[2][1], 0.75) and np.isclose(got[1][1], 0.45)
    assert np.isclose(got[4][1], 0.5 * 0.2 + 0.5 * 0.7)  # no DTW row: the lowest DTW score
    assert np.isclose(got[3][1], 0.5 * 0.2 + 0.5 * 0.1)  # no learned row: the lowest learned score
    assert [r[0] for r in rows] == [2, 1, 4, 3]
    assert got[2][2:] == (1.0, 6.0) and got[4][2:] == (3.0, 8.0)  # DTW's span where there is one
    assert [r[0] for r in weighted_union(dtw, learned, 1.0)][:3] == [1, 2, 3]
    assert weighted_union(dtw, [], 0.5) == dtw


def test_unreadable_saved_index_is_rebuilt_from_the_vectors(tmp_path) -> None:
    data = songs(12, seed=14)
    store = FaissStore(dim=16, exact_limit=50)
    store.add(list(data), list(data.values()))
    store.save(tmp_path / "st")
    with np.load(tmp_path / "st" / "vectors.npz") as z:
        parts = {k: z[k] for k in z.files}
    parts["index"] = np.frombuffer(b"not a faiss index" * 8, np.uint8)
    np.savez(tmp_path / "st" / "vectors.npz", **parts)
    loaded = FaissStore.load(tmp_path / "st")
    assert loaded.search(data["s9"][:2], 1).song_keys[:, 0].tolist() == ["s9", "s9"]
    (tmp_path / "st" / "vectors.npz").write_bytes(b"garbage")
    with pytest.raises(CatalogError):
        FaissStore.load(tmp_path / "st")


def test_a_saved_index_is_read_memory_mapped_and_a_damaged_one_is_rebuilt(tmp_path) -> None:
    """The index is memory-mapped out of vectors.npz (stores._mapped_member) with its CRC checked:
    one flipped byte in it (a bit rot zipfile would have caught) loses the saved index, not the store."""
    import zipfile

    from humdex.learned.stores import _mapped_member

    data = songs(12, seed=15)
    store = FaissStore(dim=16, exact_limit=50)
    store.add(list(data), list(data.values()))
    store.save(tmp_path / "st")
    path = tmp_path / "st" / "vectors.npz"
    with np.load(path) as z:
        saved = z["index"]
    mapped = _mapped_member(path, "index")
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, saved) and len(saved) > 1000
    want = FaissStore.load(tmp_path / "st")
    assert want._index is not None and want.kind == "hnsw"  # the saved index, not a rebuild
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("index.npy")
    raw = bytearray(path.read_bytes())
    raw[info.header_offset + 30 + len("index.npy") + 500] ^= 0xFF  # inside the index's bytes
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        _mapped_member(path, "index")
    loaded = FaissStore.load(tmp_path / "st")
    assert loaded._index is None  # rebuilt from the vectors at the first search
    for key in ("s3", "s9"):
        assert loaded.search(data[key][:3], 1).song_keys[:, 0].tolist() == [key] * 3


@pytest.mark.parametrize("codec", ["f16", "sq8", "pq", "hnswpq"])
def test_compressed_codecs_find_each_vector_and_round_trip(tmp_path: Path, codec: str) -> None:
    """Each codec's index beyond exact_limit finds stored vectors (PQ is lossy: most of them),
    keeps the sequences as float16 in RAM, and answers identically after save/load."""
    rng = np.random.default_rng(3)
    seqs = [rng.standard_normal((30, 128)).astype(np.float32) for _ in range(80)]
    seqs = [s / np.linalg.norm(s, axis=1, keepdims=True) for s in seqs]
    keys = [f"s{i}" for i in range(80)]
    store = FaissStore(dim=128, exact_limit=100, codec=codec)
    store.add(keys, seqs)
    q = np.concatenate([s[::7] for s in seqs])
    truth = np.repeat(keys, [len(s[::7]) for s in seqs])
    hits = store.search(q, 5)
    assert store.kind == {"f16": "hnsw-f16", "sq8": "hnsw-sq8", "pq": "ivfpq", "hnswpq": "hnsw-pq"}[codec]
    # random 128-d vectors are PQ's worst case; HNSW-PQ also builds its graph on the PQ codes
    assert np.mean(hits.song_keys[:, 0] == truth) >= {"pq": 0.9, "hnswpq": 0.8}.get(codec, 0.99)
    assert store._seqs["s0"].dtype == np.float16
    assert np.allclose(store.sequence("s0"), seqs[0], atol=1e-3)
    store.save(tmp_path / "st")
    loaded = FaissStore.load(tmp_path / "st")
    assert loaded.codec == codec and loaded._index is not None  # the index itself was saved
    again = loaded.search(q, 5)
    assert np.array_equal(again.song_keys, hits.song_keys) and np.allclose(again.scores, hits.scores)
    loaded.remove(["s1"])
    loaded.add(["s80"], [seqs[1]])  # appended to the trained index in place
    assert loaded.search(seqs[1][:3], 1).song_keys[:, 0].tolist() == ["s80"] * 3


@pytest.mark.parametrize("codec", ["flat", "f16"])
def test_memory_mapped_sequences_answer_as_sequences_in_ram(tmp_path: Path, codec: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A saved store loaded with its sequences memory-mapped (as a large one is by default) reads
    them from the file, not into RAM, and answers search_store exactly as the store in RAM; songs
    added or removed afterwards work, and saving it again round-trips."""
    from humdex.learned import stores

    rng = np.random.default_rng(4)
    seqs = [unit(rng.normal(size=(30, 128))) for _ in range(60)]
    keys = [f"s{i}" for i in range(60)]
    store = FaissStore(dim=128, exact_limit=100, codec=codec)
    store.add(keys, seqs)
    store.save(tmp_path / "st")
    in_ram = FaissStore.load(tmp_path / "st", mmap_sequences=False)
    monkeypatch.setattr(stores, "MMAP_SEQUENCES_BYTES", 60 * 30 * 128 * 2 - 1)  # just below this store
    mapped = FaissStore.load(tmp_path / "st")
    seq = mapped._seqs["s3"]
    assert isinstance(seq.base, np.memmap) or isinstance(getattr(seq.base, "base", None), np.memmap)
    assert not isinstance(in_ram._seqs["s3"].base, np.memmap)
    assert mapped.sequence("s3").dtype == np.float32 and np.array_equal(mapped.sequence("s3"), in_ram.sequence("s3"))
    query = seqs[7][5:20] + 0.05 * rng.normal(size=(15, 128)).astype(np.float32)
    a = search_store(in_ram, unit(query), hop_s=0.5, top=5)
    b = search_store(mapped, unit(query), hop_s=0.5, top=5)
    assert a[0].song_key == "s7" and a == b
    mapped.remove(["s7"])
    mapped.add(["new"], [seqs[7]])  # held in RAM beside the mapped ones
    assert search_store(mapped, unit(query), hop_s=0.5, top=1)[0].song_key == "new"
    mapped.save(tmp_path / "st")  # the file it maps is replaced atomically, the old map still valid
    again = FaissStore.load(tmp_path / "st", mmap_sequences=True)
    assert sorted(again.keys()) == sorted(set(keys) - {"s7"} | {"new"})
    assert np.array_equal(again.sequence("s9"), in_ram.sequence("s9"))


def test_changing_the_codec_rebuilds_the_index() -> None:
    rng = np.random.default_rng(4)
    seqs = [rng.standard_normal((20, 128)).astype(np.float32) for _ in range(20)]
    store = FaissStore(dim=128, exact_limit=100)
    store.add([f"s{i}" for i in range(20)], seqs)
    before = store.search(seqs[3][:2], 1)
    store.set_codec("sq8")
    after = store.search(seqs[3][:2], 1)
    assert store._index_kind == "hnsw-sq8" and list(after.song_keys[:, 0]) == list(before.song_keys[:, 0])
    with pytest.raises(ValueError):
        store.set_codec("zip")


def test_default_codec_holds_8_bit_codes_beyond_sq8_limit(tmp_path: Path) -> None:
    """The default codec's HNSW is float32 up to sq8_limit vectors and over 8-bit codes beyond
    it, answering the same; the limit is saved with the store, and a store saved without one
    (before it existed) keeps float32 as it grows."""
    import json

    rng = np.random.default_rng(5)
    seqs = [unit(rng.normal(size=(20, 128))) for _ in range(30)]
    keys = [f"s{i}" for i in range(30)]
    small = FaissStore(dim=128, exact_limit=100, sq8_limit=400)
    small.add(keys[:15], seqs[:15])  # 300 vectors
    large = FaissStore(dim=128, exact_limit=100, sq8_limit=400)
    large.add(keys, seqs)  # 600 vectors
    assert (small.kind, large.kind) == ("hnsw", "hnsw-sq8")
    q = np.concatenate([s[::5] for s in seqs[:15]])
    a, b = small.search(q, 1), large.search(q, 1)
    assert large._index_kind == "hnsw-sq8" and np.array_equal(a.song_keys, b.song_keys)
    small.add(keys[15:], seqs[15:])  # crossing the limit rebuilds the index over codes
    assert small.search(q, 1).song_keys.tolist() == a.song_keys.tolist() and small._index_kind == "hnsw-sq8"
    large.save(tmp_path / "new")
    loaded = FaissStore.load(tmp_path / "new")
    assert loaded.sq8_limit == 400 and loaded._index_kind == "hnsw-sq8"
    old = FaissStore(dim=128, exact_limit=100, sq8_limit=None)
    old.add(keys[:15], seqs[:15])
    old.save(tmp_path / "old")
    with np.load(tmp_path / "old" / "vectors.npz") as z:  # as written before sq8_limit was saved
        arrays = {n: z[n] for n in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["sq8_limit"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old" / "vectors.npz", **arrays)
    grown = FaissStore.load(tmp_path / "old")
    grown.add(keys[15:], seqs[15:])
    assert grown.sq8_limit is None and grown.kind == "hnsw"


def test_cli_store_codec_is_remembered_by_the_catalog(tmp_path: Path, song_dir: Path, capsys) -> None:
    import json

    from humdex.cli import main

    db = tmp_path / "db"
    assert main(["index", str(song_dir / "song00.mid"), "--db", str(db), "--quiet",
                 "--store", "faiss:sq8"]) == 0
    assert main(["add", str(song_dir), "--db", str(db), "--quiet"]) == 0
    assert json.loads((db / "catalog.json").read_text())["vector_store"] == "faiss:sq8"
    (folder,) = (db / "learned").iterdir()
    loaded = FaissStore.load(folder)
    assert loaded.codec == "sq8" and len(loaded) == 12
    assert main(["index", str(song_dir), "--db", str(db), "--quiet", "--store", "faiss"]) == 0
    assert FaissStore.load(folder).codec == "flat"  # moved back, songs kept
    assert main(["search", str(song_dir / "song03.mid"), "--db", str(db), "--store", "faiss:pq"]) == 2
    assert "keeps its fingerprints in faiss, not faiss:pq" in capsys.readouterr().err
