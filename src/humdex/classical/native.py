"""The DTW kernel in C (dtw_kernel.c), compiled once per machine and loaded with ctypes.

A cold `humdex search` used to spend most of its classical second starting numba (its import
pulls scipy.linalg and cffi, then its CPU target loads the cached kernels: 0.5-0.8 s of CPU,
holding the interpreter's lock much of it). The same kernel in C loads in a millisecond. It is
compiled by the system's C compiler (the one Python was built with, else `cc`) the first time a process asks
for it, into settings().cache_dir / "native" / dtw-<digest>.so, named by the digest of the
source, the flags and the CPU (it is built for this CPU's instructions), written atomically; `humdex index` builds it ahead
(search.prepare_default_search). Where no compiler is found or the build fails, library()
returns None and humdex.classical.dtw runs the numba kernel (dtw_numba.py), whose results are
equal to the bit (tests/test_matcher.py).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from humdex.machine import cpu_tag
from humdex.settings import settings

SOURCE = Path(__file__).with_name("dtw_kernel.c")
# no FMA contraction and IEEE semantics: each product rounded before its sum, as numba's code.
# -march=native vectorises the local costs with this CPU's widest instructions (AVX-512 here: the
# kernel at 0.65x numba's time, -O2 without it 1.05x); the file is named by the CPU it was built on
FLAGS = ("-O3", "-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
NATIVE_ARCH = ("-march=native",)  # dropped where the compiler refuses it
COMPILE_TIMEOUT_S = 60.0
_LOCK = threading.Lock()

_f32 = ctypes.POINTER(ctypes.c_float)
_f64 = ctypes.POINTER(ctypes.c_double)
_i64 = ctypes.POINTER(ctypes.c_int64)


def compiler() -> list[str] | None:
    """The C compiler command: the one Python was built with where present, else cc/gcc/clang."""
    words = shlex.split(sysconfig.get_config_var("CC") or "")
    if words and shutil.which(words[0]):
        return words
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def library_path() -> Path:
    """Where this source, built with these flags for this machine, lives in the user's cache."""
    h = hashlib.sha256(SOURCE.read_bytes())
    h.update(" ".join(FLAGS).encode())
    h.update(f"{sys.platform} {platform.machine()} {cpu_tag()}".encode())
    return settings().cache_dir / "native" / f"dtw-{h.hexdigest()[:20]}.so"


def build(target: Path) -> bool:
    """Compile the kernel into `target` (atomically: a temporary file renamed). False on failure."""
    cc = compiler()
    if cc is None:
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".dtw-", suffix=".so", dir=target.parent)
        os.close(fd)
    except OSError:
        return False
    try:
        for arch in (NATIVE_ARCH, ()):
            done = subprocess.run([*cc, *FLAGS, *arch, "-o", tmp, str(SOURCE), "-lm"],
                                  capture_output=True, timeout=COMPILE_TIMEOUT_S, check=False)
            if done.returncode == 0:
                os.replace(tmp, target)
                return True
        return False
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    lib.humdex_subsequence_dtw.restype = ctypes.c_int
    lib.humdex_subsequence_dtw.argtypes = [
        _f32, _f32, ctypes.c_int64, _f32, ctypes.c_int64, ctypes.c_double, ctypes.c_int64,
        ctypes.c_double, ctypes.c_double, _f64, _i64, _i64, _f64]
    lib.humdex_batch_subsequence_dtw.restype = ctypes.c_int
    lib.humdex_batch_subsequence_dtw.argtypes = [
        _f32, _f32, ctypes.c_int64, _f32, _i64, _f64, ctypes.c_int64, ctypes.c_int64, _i64,
        ctypes.c_double, ctypes.c_double, ctypes.c_int64, _f64, _i64, _i64, _f64]
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernel, built first where this machine's cache lacks it; None where it
    cannot be built or loaded (no C compiler: the numba kernel runs instead). Once per process."""
    with _LOCK:
        return _library()


@functools.cache
def _library() -> ctypes.CDLL | None:
    try:
        path = library_path()
    except OSError:
        return None
    for attempt in range(2):
        if path.is_file():
            try:
                return _load(path)
            except (OSError, AttributeError):  # truncated, foreign: built again
                pass
        if attempt == 0 and not build(path):
            return None
    return None
