"""The catalog: a folder of songs, their melodies and fingerprints, added and removed atomically."""

from humdex.catalog.catalog import Catalog, Snapshot, Song

__all__ = ["Catalog", "Snapshot", "Song"]
