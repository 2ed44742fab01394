"""A `--separate both` catalog from two catalogs of the same audio files, without separating again.

Spleeter is the costly part of indexing a record (~3.5 CPU-s per song here). A catalog indexed
with `--separate spleeter` holds each song's vocal-stem melody (the mix's where the stem fell
back) and one indexed with `--separate none` the mix's; `--separate both` keeps
`catalog.ingest.joined((stem, mix))` where the stem's was kept, the mix's elsewhere. This
builds that catalog from the two (the songs, their tags and their `both` stamps, so a later
`humdex index --separate both` of the same files finds them unchanged), checks on `--check` songs
that the product's own `read_song(path, None, "both")` gives the same melody, and fingerprints it
as `humdex index` does:

    python benchmarks/stem_and_mix.py --stem-db data/paths_dev/db_spleeter \
        --mix-db data/paths_dev/db_contour --out data/paths_dev/db_both --check 3

`--stem-db` may also be a `both` catalog: its stem melodies (before `mix_at_s`) are kept and its
mix melodies replaced by `--mix-db`'s, e.g. to try another mix tracker without separating again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def combined_melody(stem, mix):
    """(what `--separate both` stores, where its mix's melody starts) from what `spleeter` and
    `none` stored: the mix's alone where the stem fell back to it (the two are equal), else the
    stem's then the mix's."""
    from humdex.catalog.ingest import joined

    if mix is None:  # the mix had no pitch: `both` keeps the stem's alone
        return stem, None
    fell_back = len(stem.midi) == len(mix.midi) and np.array_equal(stem.midi, mix.midi, equal_nan=True)
    return joined((mix,) if fell_back else (stem, mix))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--stem-db", required=True, help="the songs indexed with --separate spleeter (or both)")
    p.add_argument("--mix-db", required=True, help="the same files indexed with --separate none")
    p.add_argument("--out", required=True, help="the new catalog (must not exist)")
    p.add_argument("--check", type=int, default=0, help="songs read again by the product to compare")
    args = p.parse_args(argv)

    from humdex.catalog.catalog import Catalog, Song, _stamp, read_song
    from humdex.catalog.ingest import STEM_MIX_GAP_S, melody_duration_s
    from humdex.frontend.contour import Contour
    from humdex.search import prepare_default_search

    stem_db, mix_db = Catalog.open(args.stem_db), Catalog.open(args.mix_db)
    if Path(args.out).exists():
        raise SystemExit(f"{args.out} exists")
    mixes = {s.song_id for s in mix_db.songs()}
    rows = []
    for song in stem_db.songs():
        path = Path(song.source)
        mix = mix_db.melody(song.song_id) if song.song_id in mixes else None
        stem = stem_db.melody(song.song_id)
        if ":sep=both" in song.stamp:  # its stem's melody, or the mix's where it fell back
            stem = mix if song.mix_at_s is None else Contour(
                stem.midi[: round((song.mix_at_s - STEM_MIX_GAP_S) / stem.hop_s)], stem.hop_s)
        melody, mix_at_s = combined_melody(stem, mix)
        rows.append((Song(song.song_id, song.title, song.artist, song.source, song.kind,
                          round(melody_duration_s(melody, mix_at_s), 3), _stamp(path, song.kind, None, "both"),
                          mix_at_s), melody))
    for song, melody in rows[: args.check]:
        product, _, mix_at_s = read_song(Path(song.source), None, "both")
        same = mix_at_s == song.mix_at_s and len(product.midi) == len(melody.midi) and np.allclose(
            product.midi, melody.midi, atol=1e-3, equal_nan=True)
        print(f"check {song.song_id}: {len(product.midi)} / {len(melody.midi)} frames, "
              f"{'same' if same else 'DIFFERENT'}", file=sys.stderr)
        if not same:
            return 1
    out = Catalog.open(args.out, create=True)
    out._commit(upserts=rows)
    prepare_default_search(out, progress=True)
    both = sum(song.mix_at_s is not None for song, _ in rows)
    print(f"{args.out}: {len(out)} songs, {both} with the mix's melody after the stem's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
