"""Tests of humdex.training.melody_pool: melody identity, exclusion, dedup, splits, and the shipped pool."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from humdex.frontend.melody import Note
from humdex.training import melody_pool as mp

RNG = np.random.default_rng(7)


def _tune(pitches, corpus="essenFolksong", source="a.abc", number="1", title="t") -> dict:
    pitch = np.asarray(pitches, np.float32)
    onset = np.arange(len(pitch), dtype=np.float32) * 0.5
    return {"corpus": corpus, "source": source, "number": number, "title": title,
            "onset": onset, "duration": np.full(len(pitch), 0.5, np.float32), "pitch": pitch}


def _random_melody(n: int) -> np.ndarray:
    return 60 + np.cumsum(RNG.choice([-4, -3, -2, -1, 1, 2, 3, 5], size=n)).astype(np.float32) % 24


def test_interval_sequence_is_transposition_tempo_and_repeat_invariant():
    notes = [Note(0, 1, 60), Note(1, 1, 62), Note(2, 1, 62), Note(3, 1, 59)]
    assert mp.interval_sequence(notes).tolist() == [2, -3]
    shifted = [Note(n.onset_s * 2, n.duration_s * 2, n.pitch_midi + 7) for n in notes]
    assert mp.melody_key(shifted) == mp.melody_key(notes)
    assert mp.melody_key(np.array([60.0, 62, 59])) == mp.melody_key(notes)
    assert mp.melody_key(np.array([60.0, 62, 58])) != mp.melody_key(notes)


def test_melody_key_groups_near_duplicates_by_prefix():
    base = _random_melody(60)
    variant = base.copy()
    variant[40:] += 5  # differs only after the first PREFIX_INTERVALS intervals
    early = base.copy()
    early[10] += 1
    assert mp.melody_key(variant) == mp.melody_key(base)
    assert mp.melody_key(early) != mp.melody_key(base)


def test_exclusion_catches_copies_fragments_and_containing_tunes():
    evaluation = [_random_melody(50), _random_melody(30)]
    excluded = mp.ExcludedMelodies.from_runs([mp.shingle_hashes(m) for m in evaluation])
    assert mp.is_excluded(evaluation[0] - 5, excluded)  # transposed copy
    assert mp.is_excluded(evaluation[0][:35], excluded)  # a fragment of it
    longer = np.concatenate([_random_melody(40), evaluation[1] + 3, _random_melody(40)])
    assert mp.excluded_by(longer, excluded) == 1  # a tune that contains it
    for _ in range(20):
        assert not mp.is_excluded(_random_melody(50), excluded)


def test_excluded_file_round_trip(tmp_path):
    melodies = [_random_melody(40), _random_melody(25)]
    path = tmp_path / "excluded.txt"
    path.write_text(mp.excluded_file_text(melodies, "test"))
    loaded = mp.load_excluded(path)
    assert loaded.run_counts == tuple(len(mp.shingle_hashes(m)) for m in melodies)
    assert "MIREX" not in path.read_text() and str(melodies[0][0]) not in path.read_text()
    assert mp.is_excluded(melodies[1], loaded)


def test_assemble_write_load_round_trip(tmp_path):
    a, b, evaluation = _random_melody(40), _random_melody(45), _random_melody(50)
    excluded = mp.ExcludedMelodies.from_runs([mp.shingle_hashes(evaluation)])
    tunes = [_tune(a, number="1"), _tune(a + 2, corpus="oneills1850", number="2"),  # duplicate
             _tune(b, number="3", title="Bee"), _tune(evaluation, number="4"), _tune([60, 62], number="5")]
    kept, stats = mp.assemble_pool(tunes, excluded)
    assert [t["number"] for t in kept] == ["1", "3"]  # the Essen copy of a wins by corpus order
    assert stats["duplicates"] == 1 and stats["excluded"] == {"essenFolksong": 1}
    assert stats["too_short"] == 1
    path = tmp_path / "pool.npz"
    mp.write_pool(kept, path)
    pool = mp.load_pool(path=path)
    assert [m.melody_id for m in pool] == ["essenFolksong/a/1", "essenFolksong/a/3"]
    assert pool[1].title == "Bee" and pool[1].corpus == "essenFolksong"
    np.testing.assert_array_equal(pool[1].pitch_midi, b)
    assert pool[1].notes[2] == Note(1.0, 0.5, float(b[2]))
    assert all(m.split == mp.split_of(mp.melody_key(m.pitch_midi)) for m in pool)


def test_split_of_is_deterministic_and_near_90_5_5():
    keys = [mp.melody_key(_random_melody(30)) for _ in range(2000)]
    splits = [mp.split_of(k) for k in keys]
    assert splits == [mp.split_of(k) for k in keys]
    share = {s: splits.count(s) / len(splits) for s in mp.SPLITS}
    assert 0.86 < share["train"] < 0.94 and 0.02 < share["test"] < 0.08
    with pytest.raises(ValueError):
        mp.load_pool(split="dev")


@pytest.fixture(scope="module")
def shipped_pool():
    assert mp.POOL_PATH.is_file(), "the melody pool asset must ship with the package"
    return mp.load_pool()


def test_shipped_pool_loads_with_splits_and_corpora(shipped_pool):
    assert len(shipped_pool) > 10_000
    corpora = {m.corpus for m in shipped_pool}
    assert {"essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "bach"} <= corpora
    sizes = {s: len(mp.load_pool(s)) for s in mp.SPLITS}
    assert sum(sizes.values()) == len(shipped_pool)
    assert sizes["validation"] > 300 and sizes["test"] > 300
    sample = shipped_pool[::97]
    assert all(len(m.pitch_midi) == len(m.onset_s) == len(m.duration_s) >= 5 for m in sample)
    assert all(np.all(np.diff(m.onset_s) >= 0) and np.all(m.duration_s > 0) for m in sample)


def test_shipped_pool_dedup_and_disjoint_splits(shipped_pool):
    keys = [mp.melody_key(m.pitch_midi) for m in shipped_pool]
    assert keys == [m.key for m in shipped_pool]
    assert len(set(keys)) == len(keys)  # no two pool tunes share a melody key
    assert len({m.melody_id for m in shipped_pool}) == len(shipped_pool)
    by_split = {s: {m.key for m in shipped_pool if m.split == s} for s in mp.SPLITS}
    assert not (by_split["train"] & by_split["validation"]) and not (by_split["train"] & by_split["test"])
    assert all(m.split == mp.split_of(m.key) for m in shipped_pool)


EVALUATION = Path(__file__).parent / "data" / "evaluation_melodies.json"


def melody_digest(pitches) -> str:
    """A digest of a melody's steps between successive notes of different (rounded) pitch: equal
    for copies at any key and tempo. Written apart from melody_pool, as the test's own yardstick."""
    semitones = [round(float(p)) for p in pitches]
    held = [p for i, p in enumerate(semitones) if i == 0 or p != semitones[i - 1]]
    steps = ",".join(str(b - a) for a, b in itertools.pairwise(held))
    return hashlib.blake2b(steps.encode(), digest_size=8).hexdigest()


def test_the_shipped_pool_holds_no_copy_of_an_evaluation_melody(shipped_pool):
    """Checked against the evaluation melodies themselves (digests written from the MIREX QBSH
    database by tests/data/make_evaluation_digests.py), not against the rule that built the pool."""
    evaluation = json.loads(EVALUATION.read_text())
    digests = set(evaluation["digests"])
    assert len(digests) > 2000
    copies = [m.melody_id for m in shipped_pool if melody_digest(m.pitch_midi) in digests]
    assert copies == []
    # music21 tunes known to equal a database melody were left out (no other copy stands in: above)
    known = evaluation["corpus_copies"]
    assert len(known) >= 10
    assert not set(known) & {m.melody_id for m in shipped_pool}


def test_exclusion_follows_the_melody_not_its_key_tempo_or_repeated_notes():
    evaluation = _random_melody(40)
    excluded = mp.ExcludedMelodies.from_runs([mp.shingle_hashes(evaluation)])
    sung_again = np.repeat(evaluation, 2) + 0.2  # notes repeated (ties, syllables), a bit sharp
    tunes = [_tune(evaluation - 3, number="1"), _tune(sung_again, number="2"),
             _tune(evaluation[5:30], number="3"), _tune(_random_melody(40), number="4")]
    tunes[1]["onset"] = np.arange(80, dtype=np.float32) * 0.3  # another tempo
    tunes[1]["duration"] = np.full(80, 0.3, np.float32)
    kept, stats = mp.assemble_pool(tunes, excluded)
    assert [t["number"] for t in kept] == ["4"] and stats["excluded"] == {"essenFolksong": 3}


def test_a_shared_motif_is_not_a_copy():
    """A tune that shares one short phrase with an evaluation melody stays; one that shares most
    of its phrases goes."""
    evaluation = _random_melody(60)
    excluded = mp.ExcludedMelodies.from_runs([mp.shingle_hashes(evaluation)])
    # the evaluation melody has 50 runs of 10 intervals; EXCLUDE_FRACTION = 0.4 of them is 20
    motif = np.concatenate([_random_melody(20), evaluation[:26], _random_melody(20)])  # 16 runs shared
    assert not mp.is_excluded(motif, excluded)
    most = np.concatenate([evaluation[:33], _random_melody(27)])  # 23 runs shared
    assert mp.is_excluded(most, excluded)


def test_essen_titles_in_code_page_437_are_decoded_per_source_file() -> None:
    from humdex.training.melody_pool import decoded_titles, load_pool

    ids = ["essenFolksong/lot/1", "essenFolksong/lot/2", "essenFolksong/irl/1"]
    got = decoded_titles(ids, ["Sch\x84fer und Edelmann", "Schloá", "An cailín rua"])
    assert got == ["Schäfer und Edelmann", "Schloß", "An cailín rua"]  # irl is real Latin-1
    titles = [m.title for m in load_pool()]
    assert not [t for t in titles if any(0x80 <= ord(c) < 0xA0 for c in t)]
    assert any("ä" in t for t in titles) and any("í" in t for t in titles)
