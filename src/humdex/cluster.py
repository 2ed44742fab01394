"""Ray: humdex's batch work (`humdex index --ray`, `humdex mine --ray`) spread over a cluster.

The work is the same per-song (per-group) function the single-process path calls, run as a Ray
task behind the standard `concurrent.futures.Executor` interface (RayExecutor), so the code that
collects the results is the same code: the driver alone writes the catalog, its fingerprint
stores and the mined metadata, in the order the single-process path does, which makes the
results identical by construction. A task whose worker dies is retried by Ray (`max_retries`);
a killed driver leaves what it committed, and the next run skips it (catalog stamps, stores'
song keys, mined groups' meta files).

Workers read the song files by the paths the driver gives them: on a cluster of several machines
the songs (and `humdex mine`'s output folder) sit on a shared filesystem, and every node runs the
same humdex (a worker checks that its models' weights are the driver's).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from humdex.errors import HumdexError

LOCAL = "local"  # `--ray` without an address: a Ray instance on this machine, for this run only
MAX_RETRIES = 3  # a task whose worker process died is run again this many times
# environment the workers need to compute what the driver would: humdex's settings (models,
# precision, inputs) and the native-runtime choices of the `humdex` command
_PASSED_ENV = ("OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "TORCH_CPP_LOG_LEVEL", "XDG_CACHE_HOME")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HumdexError("--ray needs Ray on this machine: pip install 'humdex[ray]'") from None
    return ray


def worker_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables a Ray worker gets: the driver's HUMDEX_* settings and native
    runtime choices; HUMDEX_THREADS 1 unless set (each task holds one CPU of the cluster)."""
    env = dict(os.environ if environ is None else environ)
    out = {k: v for k, v in env.items() if k.startswith("HUMDEX_") or k in _PASSED_ENV}
    out.setdefault("HUMDEX_THREADS", "1")
    return out


class RayExecutor(Executor):
    """A concurrent.futures Executor whose calls run as Ray tasks (one CPU each).

    Its futures raise what the function raised (the worker's exception itself, not Ray's
    wrapper), or HumdexError when Ray gave up on a task (its worker died MAX_RETRIES + 1 times,
    its node was lost)."""

    def __init__(self, max_retries: int = MAX_RETRIES) -> None:
        self.max_retries = max_retries
        self._remotes: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        ray = _ray()
        remote = self._remotes.get(fn)
        if remote is None:
            remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(fn)
            self._remotes[fn] = remote
        ref = remote.remote(*args, **kwargs)
        result: Future = Future()
        result.set_running_or_notify_cancel()

        def settle(ray_future: Future) -> None:
            try:
                result.set_result(ray_future.result())
            except ray.exceptions.RayTaskError as err:  # the function raised: pass that on
                cause = getattr(err, "cause", None)
                result.set_exception(cause if isinstance(cause, BaseException) else err)
            except ray.exceptions.RayError as err:
                what = " ".join(str(err).split())[:200]
                result.set_exception(HumdexError(
                    f"Ray could not run it (tried {self.max_retries + 1} times): "
                    f"{type(err).__name__}: {what}"))
            except BaseException as err:  # noqa: BLE001 - handed to the caller, as an Executor does
                result.set_exception(err)

        ref.future().add_done_callback(settle)
        return result


@contextmanager
def ray_executor(address: str = LOCAL, num_cpus: int | None = None) -> Iterator[RayExecutor]:
    """An executor on the Ray cluster at `address` ("local": start one on this machine for this
    run; "auto": the one `ray start` runs here; "host:6379" or "ray://host:10001"). Ray is left
    as it was found: a connection this opened is closed at exit. HumdexError when Ray is missing
    or the cluster cannot be reached."""
    ray = _ray()
    opened = not ray.is_initialized()
    if opened:
        _check_reachable(address)
        try:
            ray.init(address=None if address == LOCAL else address, num_cpus=num_cpus if address == LOCAL else None,
                     include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     configure_logging=True, runtime_env={"env_vars": worker_env()})
        except (ConnectionError, ValueError, RuntimeError) as err:
            what = " ".join(str(err).split())[:200]
            raise HumdexError(f"--ray {address}: cannot reach a Ray cluster ({what})") from None
    try:
        yield RayExecutor()
    finally:
        if opened:
            ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """HumdexError when nothing listens at a `host:port` / `ray://host:port` address (Ray itself
    would retry for minutes, printing C++ warnings)."""
    if address in (LOCAL, "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise HumdexError(f"--ray {address}: give host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise HumdexError(f"--ray {address}: cannot reach a Ray cluster there ({err})") from None


def executor_for(ray_address: str | None) -> AbstractContextManager[RayExecutor | None]:
    """The executor of a command's `--ray [ADDRESS]` (ray_executor), None without --ray."""
    return nullcontext(None) if ray_address is None else ray_executor(ray_address)


def ordered_map(executor: Executor, fn: Callable[..., Any], jobs: Iterable[Sequence[Any]],
                ahead: int) -> Iterator[Future]:
    """Futures of fn(*job) for each job, in the jobs' order, with at most `ahead` submitted and
    not yet handed out: the caller consumes results in the order a sequential loop would."""
    window: list[Future] = []
    for job in jobs:
        window.append(executor.submit(fn, *job))
        if len(window) > ahead:
            yield window.pop(0)
    yield from window


def executor_workers(executor: Executor) -> int:
    """How many calls `executor` runs at once: a RayExecutor's cluster CPUs, a pool's workers."""
    if isinstance(executor, RayExecutor):
        return max(1, int(_ray().cluster_resources().get("CPU", 1)))
    return int(getattr(executor, "_max_workers", None) or os.cpu_count() or 1)
