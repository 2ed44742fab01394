"""numba's on-disk kernel cache, made safe for concurrent processes and for caches gone bad.

humdex runs numba kernels of its own (classical.dtw) and librosa's (pYIN), all compiled with
`cache=True`. Stock numba (0.58-0.68) can leave a cache that crashes every later process, in two
ways, both measured by benchmarks/numba_cache_race.py:

1. A gufunc is cached as two entries: the kernel (`pitch._pi_wrapper-*.nbc`) and its wrapper
   (`guf-pitch._pi_wrapper-*.nbc`). The wrapper calls the kernel by its mangled symbol name,
   which holds a per-process counter (numba's FunctionIdentity uid: it depends on what else the
   process compiled first), but the wrapper's cache key holds only the signature. When the
   kernel entry on disk comes from one process and the wrapper entry from another (two pytest
   workers compiling librosa's kernels at once, each entry saved by whoever wrote last), every
   later process loads a wrapper that points at a symbol its kernel does not define: a
   segmentation fault at the first call.
2. IndexDataCacheFile.save reads the index, takes the first free data file number, writes the
   index, then the data file, with no lock between processes: two processes saving two keys
   at once both take `<function>.1.nbc`, and the index that lands keeps one key while the data
   file holds the other key's machine code.

`install()` (called before any numba function is defined: classical.dtw imports it, and pitch
tracking calls it before importing librosa) makes every cache numba creates afterwards:
- live in a folder humdex owns (NUMBA_CACHE_DIR when the user set one, else
  ~/.cache/humdex/numba), under file names stock numba never reads, so a cache that stock
  numba already broke (site-packages/librosa/**/__pycache__) is never loaded again;
- key a gufunc wrapper by the kernel symbol it calls, so a wrapper built for another
  process's kernel is a cache miss;
- save under an exclusive file lock per function, and store each entry's key inside its data
  file and check it on load: an entry whose data belongs to another key, or that cannot be
  read, is a cache miss (compiled again and saved over), never foreign machine code.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numba.np.ufunc.wrappers as gufunc_wrappers
from numba.core import caching, config

from humdex.settings import settings

FORMAT_TAG = "humdex1"  # in every file name this module writes; bump it to change the format


@contextlib.contextmanager
def _exclusive(lock_path: str) -> Iterator[None]:
    import fcntl

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class KeyCheckedCacheFile(caching.IndexDataCacheFile):
    """numba's index + data files, saved under a lock, with each entry's key checked on load."""

    def __init__(self, cache_path: str, filename_base: str, source_stamp: Any) -> None:
        super().__init__(cache_path, f"{filename_base}.{FORMAT_TAG}", source_stamp)
        self._lock_path = os.path.join(cache_path, f"{filename_base}.{FORMAT_TAG}.lock")

    def save(self, key: Any, data: Any) -> None:
        with _exclusive(self._lock_path):  # the index is read again under the lock
            super().save(key, (key, data))

    def load(self, key: Any) -> Any:
        try:
            entry = super().load(key)
            stored_key, data = entry
        except Exception:  # noqa: BLE001  missing, truncated, foreign or older format: compile again
            return None
        return data if stored_key == key else None

    def _load_index(self) -> dict:
        try:
            return super()._load_index()
        except Exception:  # noqa: BLE001  a truncated or foreign index: start a new one
            return {}


class KernelKeyedWrapperCache(gufunc_wrappers.GufWrapperCache):  # type: ignore[misc,valid-type]
    """A gufunc wrapper's cache, keyed also by the name of the kernel symbol the wrapper calls."""

    kernel_symbol = ""

    def _index_key(self, sig: Any, codegen: Any) -> tuple:
        return (*super()._index_key(sig, codegen), self.kernel_symbol)


_stock_gufunc_wrapper_init = gufunc_wrappers._GufuncWrapper.__init__


def _gufunc_wrapper_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _stock_gufunc_wrapper_init(self, *args, **kwargs)
    if isinstance(self.cache, KernelKeyedWrapperCache):
        self.cache.kernel_symbol = self.fndesc.mangled_name


@functools.cache
def install() -> Path:
    """Route every numba cache created from now on through KeyCheckedCacheFile; returns the folder."""
    if not getattr(config, "CACHE_DIR", ""):  # NUMBA_CACHE_DIR, read when numba was imported
        config.CACHE_DIR = str(settings().cache_dir / "numba")  # type: ignore[attr-defined]
    caching.IndexDataCacheFile = KeyCheckedCacheFile  # type: ignore[misc]
    gufunc_wrappers.GufWrapperCache = KernelKeyedWrapperCache  # type: ignore[misc]
    gufunc_wrappers._GufuncWrapper.__init__ = _gufunc_wrapper_init  # type: ignore[method-assign]
    return Path(config.CACHE_DIR)  # type: ignore[attr-defined]
