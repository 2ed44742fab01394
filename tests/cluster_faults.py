"""Faults for Ray workers (tests/test_cluster.py): `install` runs in every worker of the tests'
cluster (Ray's worker_process_setup_hook) and wraps the per-song and per-group task functions so
that a worker kills itself (SIGKILL: a crash, no exception) on the first task whose song or
group is named in the file $HUMDEX_TEST_KILL_FILE, which it renames first (one kill per name),
and a task named in $HUMDEX_TEST_HOLD_FILE waits while that file exists (at most a minute,
its worker's pid in hold.pid): a driver is then surely mid-run when the test kills it.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path
from typing import Any


def _wait_if_held(name: str) -> None:
    """While the hold file names `name`: wait, having written this worker's pid beside it."""
    hold = os.environ.get("HUMDEX_TEST_HOLD_FILE")
    deadline = time.monotonic() + 60
    while hold and time.monotonic() < deadline:
        try:
            if Path(hold).read_text().strip() != name:
                return
            Path(hold).with_suffix(".pid").write_text(str(os.getpid()))
        except OSError:
            return
        time.sleep(0.1)


def _die_if_named(name: str) -> None:
    order = os.environ.get("HUMDEX_TEST_KILL_FILE")
    if not order:
        return
    order_path = Path(order)
    try:
        if order_path.read_text().strip() != name:
            return
        claimed = order_path.with_suffix(".claimed")
        order_path.rename(claimed)  # one worker wins, once
    except OSError:
        return
    claimed.write_text(f"{name} {os.getpid()}")
    os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    from humdex.catalog import catalog
    from humdex.training import mining

    read_song, mine_worker = catalog.read_song, mining._mine_worker

    @functools.wraps(read_song)
    def read_song_or_die(path: Path, *args: Any) -> Any:
        _die_if_named(Path(path).stem)
        _wait_if_held(Path(path).stem)
        return read_song(path, *args)

    @functools.wraps(mine_worker)
    def mine_worker_or_die(group: Any, *args: Any) -> Any:
        _die_if_named(group.group_id)
        _wait_if_held(group.group_id)
        return mine_worker(group, *args)

    catalog.read_song = read_song_or_die  # type: ignore[assignment]
    mining._mine_worker = mine_worker_or_die  # type: ignore[assignment]
