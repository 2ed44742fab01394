"""Files written so that readers never see half of one, and folders one writer at a time.

atomic_write: a unique temporary file in the target's folder (two writers never share one),
fsync, then os.replace over the target; a crash leaves the old file or the new one, plus at
worst a stray `.NAME.*.tmp` that `humdex check --repair` removes. folder_lock: an advisory
fcntl lock on FOLDER/.lock, held across processes (released by the kernel if one dies).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

LOCK_NAME = ".lock"
TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file (mkstemp gives 0600)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any],
                 fsync: bool = True) -> Path:
    """Call write(f) on a fresh temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            os.fchmod(f.fileno(), _FILE_MODE)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, fsync: bool = True) -> Path:
    return atomic_write(path, lambda f: f.write(data), fsync=fsync)


def atomic_savez(path: str | os.PathLike[str], compressed: bool = False, **arrays: Any) -> Path:
    """np.savez (or savez_compressed) of `arrays` to `path`, atomically."""
    import numpy as np

    save = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda f: save(f, **arrays))


def stray_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Temporary files atomic_write left behind in `folder` (a writer killed mid-write)."""
    return sorted(Path(folder).glob(f".*{TMP_SUFFIX}"))


def remove_stray_temp_files(folder: str | os.PathLike[str]) -> None:
    """Delete them; only call while holding folder_lock(folder), so no writer is mid-write."""
    for path in stray_temp_files(folder):
        path.unlink(missing_ok=True)


@contextmanager
def folder_lock(folder: str | os.PathLike[str], shared: bool = False) -> Iterator[None]:
    """Hold an exclusive (or shared) lock on `folder` across processes while inside."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
