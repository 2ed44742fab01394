"""`humdex index --ray` and `humdex mine --ray` on a local Ray cluster (two CPUs, one per module):
the same catalog, fingerprint stores and mined fragments as the single-process path, a killed
driver resumed, a killed worker's task retried."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import random_melody, sing
from humdex.cli import main

ray = pytest.importorskip("ray")  # the `ray` extra; under CI=true a skip fails (conftest.py)

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A local Ray cluster for this module: its address, and the files that order a worker's death
    or a task's wait (tests/cluster_faults.py)."""
    from humdex.cluster import worker_env

    faults = tmp_path_factory.mktemp("faults")
    kill_file, hold_file = faults / "kill.txt", faults / "hold.txt"
    path = os.pathsep.join([str(TESTS), str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**worker_env(), "HUMDEX_TEST_KILL_FILE": str(kill_file),
           "HUMDEX_TEST_HOLD_FILE": str(hold_file), "PYTHONPATH": path}
    runtime_env = {"env_vars": env, "worker_process_setup_hook": "cluster_faults.install"}
    head, temp_dir, address = start_local_ray()
    try:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, logging_level="ERROR")
        yield {"address": address, "kill_file": str(kill_file), "hold_file": str(hold_file),
               "runtime_env": json.dumps(runtime_env)}
    finally:
        ray.shutdown()
        stop_head(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


# The cluster's head runs in a fresh process of its own. Started from the test process, Ray forks
# its GCS server and raylet from a process whose earlier tests left threads (ONNX Runtime, the DTW,
# thread pools) and runs Python in the forked child before exec (Ray's preexec_fn): a child forked
# while another thread held a lock hangs there. A CI run and a clean-clone run saw it: a GCS
# server, then a raylet, that never wrote a line, and every test of this module errored.
HEAD = """
import sys, ray
ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False,
         logging_level="ERROR", _temp_dir=sys.argv[1])
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # until the test closes it
ray.shutdown()
"""


def start_local_ray(tries: int = 3, timeout_s: float = 180.0) -> tuple[subprocess.Popen, str, str]:
    """(head process, its session folder, the cluster's address) of a 2-CPU local Ray cluster
    started by a fresh Python process in a folder of its own (not the machine-wide /tmp/ray), its
    GCS server given 120 s to start; tried again from a fresh folder when it does not come up."""
    # RAY_AUTH_MODE disabled: a local cluster turns on token authentication by default, which the
    # drivers connecting to it (this process and those the tests start) would have to be told of
    env = {**os.environ, "RAY_gcs_server_port_wait_time_s": "120", "RAY_AUTH_MODE": "disabled"}
    for attempt in range(1, tries + 1):
        # a short path: Ray's Unix sockets live under it (108-byte limit)
        temp_dir = tempfile.mkdtemp(prefix=f"ray{attempt}-", dir="/tmp")
        with open(Path(temp_dir) / "head.err", "w") as err:
            head = subprocess.Popen([sys.executable, "-c", HEAD, temp_dir], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                    start_new_session=True)
        address = read_address(head, timeout_s)
        if address:
            return head, temp_dir, address
        stop_head(head)
        logs = sorted(str(p.relative_to(temp_dir)) for p in Path(temp_dir).rglob("*") if p.is_file())
        print(f"Ray head attempt {attempt} of {tries} failed: "
              f"{(Path(temp_dir) / 'head.err').read_text()[-2000:]}; logs: {logs[:30]}", file=sys.stderr)
        shutil.rmtree(temp_dir, ignore_errors=True)
    raise RuntimeError(f"a local Ray cluster did not start in {tries} tries")


def read_address(head: subprocess.Popen, timeout_s: float) -> str | None:
    """The first host:port line the head prints within timeout_s; None if it ends or stays silent."""
    import re
    import selectors

    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(head.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        while sel.select(max(0.0, deadline - time.monotonic())):
            line = head.stdout.readline()  # type: ignore[union-attr]
            if not line:
                return None  # the head ended
            if re.fullmatch(r"\S+:\d+", line.strip()):
                return line.strip()
    return None


def stop_head(head: subprocess.Popen) -> None:
    """Let the head shut its cluster down (up to 60 s), then kill whatever of its process group is
    left (its Ray daemons, or the head itself when it hung)."""
    try:
        head.stdin.close()  # type: ignore[union-attr]
        head.wait(timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(head.pid, signal.SIGKILL)  # the head and any of its Ray daemons still running
    except (ProcessLookupError, PermissionError):
        pass
    head.wait()


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The single-process runs use one thread per call, as the cluster's workers do."""
    monkeypatch.setenv("HUMDEX_THREADS", "1")


@pytest.fixture
def songs(tmp_path: Path, melodies) -> Path:
    """2 sung recordings (tracked by salience; first in the order songs are indexed, so that a
    killed driver has committed them), 8 MIDI songs and a file with no melody."""
    from conftest import write_midi

    folder = tmp_path / "songs"
    folder.mkdir()
    for i, melody in enumerate(melodies[:8]):
        write_midi(folder / f"song{i:02d}.mid", melody)
    for i, melody in enumerate(melodies[8:10]):
        sf.write(folder / f"aria{i}.wav", sing(melody[:16], seed=i), 16000)
    sf.write(folder / "silence.wav", np.zeros(48000, np.float32), 16000)
    return folder


def catalog_contents(db: Path) -> dict:
    """Everything a catalog holds: its song rows, its data arrays, its fingerprint stores' keys
    and vectors (in the store's order)."""
    from humdex.learned.stores import FaissStore

    manifest = json.loads((db / "catalog.json").read_text())
    with np.load(db / manifest["files"]["data"]) as data:
        arrays = {name: data[name].copy() for name in data.files}
    stores = {}
    for folder in sorted((db / "learned").iterdir()):
        store = FaissStore.load(folder)
        keys = store.keys()  # a list, in the order the songs were added
        stores[folder.name] = {k: store.sequence(k) for k in keys}
    return {"songs": manifest["songs"], "arrays": arrays, "stores": stores}


def assert_same_catalog(a: Path, b: Path) -> None:
    ca, cb = catalog_contents(a), catalog_contents(b)
    assert ca["songs"] == cb["songs"]
    assert ca["arrays"].keys() == cb["arrays"].keys()
    for name in ca["arrays"]:
        np.testing.assert_array_equal(ca["arrays"][name], cb["arrays"][name], err_msg=name)
    assert ca["stores"].keys() == cb["stores"].keys() and ca["stores"]
    for folder, vectors in ca["stores"].items():
        assert list(vectors) == list(cb["stores"][folder])  # the same songs, in the same order
        for key in vectors:
            np.testing.assert_array_equal(vectors[key], cb["stores"][folder][key], err_msg=key)


def test_index_on_ray_equals_the_single_process_index(cluster, songs: Path, tmp_path: Path,
                                                      capsys) -> None:
    assert main(["index", str(songs), "--db", str(tmp_path / "one"), "--quiet"]) == 0
    single = capsys.readouterr()
    assert main(["index", str(songs), "--db", str(tmp_path / "ray"), "--quiet",
                 "--ray", cluster["address"]]) == 0
    on_ray = capsys.readouterr()
    assert on_ray.out.replace(str(tmp_path / "ray"), str(tmp_path / "one")) == single.out
    assert "indexed 10 songs, 0 unchanged, 1 failed" in single.out
    assert on_ray.err.count("silence.wav") == single.err.count("silence.wav") == 1
    assert_same_catalog(tmp_path / "one", tmp_path / "ray")
    # idempotent: a second run on Ray reads nothing again
    assert main(["add", str(songs), "--db", str(tmp_path / "ray"), "--quiet",
                 "--ray", cluster["address"]]) == 0
    assert "indexed 0 songs, 10 unchanged, 1 failed" in capsys.readouterr().out


def test_index_on_ray_with_a_users_model_file(cluster, song_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """HUMDEX_MODELS naming a .pt file: the workers load that file (not a shipped name)."""
    from humdex.learned.shipped import default_model_path

    own = tmp_path / "mine.pt"
    own.write_bytes(default_model_path("cqt").read_bytes())
    monkeypatch.setenv("HUMDEX_MODELS", str(own))
    songs = [str(song_dir / f"song{i:02d}.mid") for i in range(3)]
    assert main(["index", *songs, "--db", str(tmp_path / "one"), "--quiet"]) == 0
    assert main(["index", *songs, "--db", str(tmp_path / "ray"), "--quiet", "--ray", cluster["address"]]) == 0
    assert [p.name.split("-")[0] for p in (tmp_path / "ray" / "learned").iterdir()] == ["mine"]
    assert_same_catalog(tmp_path / "one", tmp_path / "ray")


def test_unreachable_cluster_is_a_one_line_error(song_dir: Path, tmp_path: Path) -> None:
    """Nothing listening at --ray ADDRESS: one line at once (Ray alone retries for minutes)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    for address, says in (("127.0.0.1:1", "cannot reach a Ray cluster there"),
                          ("nonsense", "give host:port, ray://host:port or auto")):
        run = subprocess.run([sys.executable, "-m", "humdex", "index", str(song_dir), "--db",
                              str(tmp_path / "db"), "--ray", address], check=False, env=env,
                             capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 2 and run.stderr.startswith(f"humdex: error: --ray {address}: {says}")
        assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "db").exists()


def test_killed_worker_task_is_retried(cluster, songs: Path, tmp_path: Path, capsys) -> None:
    Path(cluster["kill_file"]).write_text("aria1")
    assert main(["index", str(songs), "--db", str(tmp_path / "ray"), "--quiet",
                 "--ray", cluster["address"]]) == 0
    claimed = Path(cluster["kill_file"]).with_suffix(".claimed")
    assert claimed.read_text().startswith("aria1 ")  # a worker did die on aria1 ...
    assert "indexed 10 songs, 0 unchanged, 1 failed" in capsys.readouterr().out  # ... and it was retried
    assert main(["index", str(songs), "--db", str(tmp_path / "one"), "--quiet"]) == 0
    assert_same_catalog(tmp_path / "one", tmp_path / "ray")


DRIVER = r"""
import json, os, sys
import ray
import humdex.catalog.catalog as catalog
catalog.COMMIT_EVERY_S = 0.0  # commit every song, so that a kill finds some committed
from humdex.cli import main
# the test cluster's worker environment and faults (humdex would give this job its own)
ray.init(address=sys.argv[1], runtime_env=json.loads(os.environ["TEST_RUNTIME_ENV"]),
         log_to_driver=False, logging_level="ERROR")
sys.exit(main(sys.argv[2:] + ["--ray", sys.argv[1]]))
"""


def driver(cluster: dict[str, str], args: list[str]) -> subprocess.Popen:
    """A `humdex` driver process on the test cluster (its workers get the faults)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]),
           "TEST_RUNTIME_ENV": cluster["runtime_env"]}
    return subprocess.Popen([sys.executable, "-c", DRIVER, cluster["address"], *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_killed_driver_resumes_to_the_single_process_catalog(cluster, songs: Path, tmp_path: Path,
                                                             capsys) -> None:
    db = tmp_path / "ray"
    hold = Path(cluster["hold_file"])
    hold.write_text("song04")  # its read waits: the driver commits in file order, so it stops before it
    try:
        running = driver(cluster, ["index", str(songs), "--db", str(db), "--quiet"])
        committed = 0
        deadline = time.monotonic() + 120
        while committed < 3 and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                committed = len(json.loads((db / "catalog.json").read_text())["songs"])
            except (OSError, ValueError, KeyError):
                pass
        assert running.poll() is None, "the driver finished before it could be killed"
        running.send_signal(signal.SIGKILL)
        running.wait()
    finally:
        hold.unlink(missing_ok=True)
    assert 3 <= committed < 10
    assert main(["index", str(songs), "--db", str(db), "--quiet", "--ray", cluster["address"]]) == 0
    out = capsys.readouterr().out
    resumed = int(out.split(" songs, ")[1].split(" unchanged")[0])
    assert resumed >= 3, out  # the songs the killed driver committed were not read again
    assert main(["index", str(songs), "--db", str(tmp_path / "one"), "--quiet"]) == 0
    assert_same_catalog(tmp_path / "one", db)


# ---- humdex mine --ray --------------------------------------------------------------------------


@pytest.fixture
def groups(tmp_path: Path) -> Path:
    """Three cover groups: an original and a slower transposed cover each."""
    rng = np.random.default_rng(5)
    lines = ["group_id,role,path"]
    for g in range(3):
        melody = random_melody(rng, 20)
        sf.write(tmp_path / f"orig{g}.wav", sing(melody, seed=g), 16000)
        sf.write(tmp_path / f"cover{g}.wav", sing(melody, tempo=0.9, transpose_st=2, seed=10 + g), 16000)
        lines += [f"g{g},original,orig{g}.wav", f"g{g},cover,cover{g}.wav"]
    (tmp_path / "groups.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "groups.csv"


def mined(out: Path) -> dict[str, bytes]:
    """Every file a mining run wrote (the feature cache aside), by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".cache" not in p.parts}


def test_mine_on_ray_equals_single_process_and_survives_a_killed_worker(cluster, groups: Path,
                                                                         tmp_path: Path) -> None:
    from humdex.learned.model import default_model_path

    model = str(default_model_path("cqt"))
    args = ["mine", str(groups), "--model", model, "--fragment-s", "4", "--fragment-hop-s", "4", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    Path(cluster["kill_file"]).write_text("g1")
    assert main([*args, "--out", str(tmp_path / "ray"), "--ray", cluster["address"]]) == 0
    assert Path(cluster["kill_file"]).with_suffix(".claimed").read_text().startswith("g1 ")
    one, on_ray = mined(tmp_path / "one"), mined(tmp_path / "ray")
    assert len([p for p in one if p.startswith("meta/")]) == 3
    assert one.keys() == on_ray.keys()
    assert one == on_ray


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killed_mine_driver_resumes_to_the_single_process_output(cluster, groups: Path,
                                                                tmp_path: Path, capsys) -> None:
    """The driver is killed while g2 is held in its worker, after g0 and g1 were mined; the rerun
    mines g2 alone, and the folder is the single-process one."""
    from humdex.learned.model import default_model_path

    model = str(default_model_path("cqt"))
    args = ["mine", str(groups), "--model", model, "--fragment-s", "4", "--fragment-hop-s", "4", "--quiet"]
    out = tmp_path / "ray"
    hold = Path(cluster["hold_file"])
    hold.write_text("g2")
    try:
        running = driver(cluster, [*args, "--out", str(out)])
        deadline = time.monotonic() + 120
        held_pid = hold.with_suffix(".pid")
        while (len(list((out / "meta").glob("*.csv"))) < 2 or not held_pid.is_file()) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.poll() is None, "the driver finished before it could be killed"
        running.send_signal(signal.SIGKILL)
        running.wait()
        held = int(held_pid.read_text())
        while pid_alive(held) and time.monotonic() < deadline:
            time.sleep(0.05)  # Ray ends the dead driver's tasks: their workers are killed
        assert not pid_alive(held), "Ray left the killed driver's task running"
    finally:
        hold.unlink(missing_ok=True)
    assert sorted(p.stem for p in (out / "meta").glob("*.csv")) == ["g0", "g1"]
    assert main([*args, "--out", str(out), "--ray", cluster["address"]]) == 0
    assert capsys.readouterr().out.startswith("1 groups mined, 2 already done, 0 failed")
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert mined(tmp_path / "one") == mined(out)
