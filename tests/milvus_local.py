"""A Milvus standalone server on this machine, for tests: the server binary that PyPI's `milvus`
package ships (2.3, "embedded Milvus": etcd and rocksmq inside one process, data in a folder),
started on free ports in a folder of its own and stopped afterwards.

The package's own MilvusServer starts the embedded etcd on its fixed ports (2379/2380), so a
second server on the machine dies at start, and its wait for a dead server lasts 180 s; here the
etcd gets free ports from a config file of its own, and a server that exits is reported at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Self

START_TIMEOUT_S = 120.0
SESSION_TTL_S = 8  # Milvus's default is 30 s


def server_installed() -> bool:
    """Whether the `milvus` package (the server binary) is importable."""
    try:
        import milvus  # noqa: F401
    except ImportError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bind_reusing(port: int) -> socket.socket | None:
    """A listening socket on 127.0.0.1:port with SO_REUSEADDR, as the server binds (None if taken)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


class LocalMilvus:
    """`with LocalMilvus(folder) as server:` a server at server.uri (http://127.0.0.1:PORT).
    stop() ends it with SIGTERM (a clean shutdown), kill() with SIGKILL (a crash); start() again
    on the same folder reopens its data."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder, self.port = Path(folder).resolve(), port or free_port()
        self.proc: subprocess.Popen | None = None
        self.uri = f"http://127.0.0.1:{self.port}"

    def _configure(self) -> tuple[list[str], dict[str, str], int]:
        from milvus import MilvusServerConfig, _initialize_data_files

        config = MilvusServerConfig(data_dir=str(self.folder), proxy_port=self.port)
        config.try_bind_port = _bind_reusing  # a restart's port may hold TIME_WAIT connections
        config.resolve()  # free ports for the other roles, the folders, configs/milvus.yaml
        _initialize_data_files(config.base_data_dir)  # unpacks bin/ (once)
        client, peer = free_port(), free_port()
        etcd = self.folder / "configs" / "etcd.yaml"
        etcd.write_text(f"name: default\nlisten-client-urls: http://127.0.0.1:{client}\n"
                        f"advertise-client-urls: http://127.0.0.1:{client}\n"
                        f"listen-peer-urls: http://127.0.0.1:{peer}\n"
                        f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
                        f"initial-cluster: default=http://127.0.0.1:{peer}\n")
        yaml = self.folder / "configs" / "milvus.yaml"
        text, ttl = yaml.read_text(), "\n    ttl: 30 # ttl value when session"
        assert "\netcd:\n" in text and ttl in text, "the milvus package's config template changed"
        text = text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd}\n", 1)
        # a crashed server's sessions expire after this: the restarted one waits for them
        yaml.write_text(text.replace(ttl, ttl.replace("30", str(SESSION_TTL_S)), 1))
        bin_dir = self.folder / "bin"
        metrics = free_port()
        env = {**os.environ, "DEPLOY_MODE": "STANDALONE", "METRICS_PORT": str(metrics),
               "MILVUS_RUN_DIR": str(self.folder / "run"),
               "LD_LIBRARY_PATH": f"{bin_dir}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
        return [str(bin_dir / "milvus"), "run", "standalone"], env, metrics

    def start(self) -> Self:
        cmd, env, metrics = self._configure()
        logs = self.folder / "logs"
        with open(logs / "milvus-stdout.log", "ab") as out, open(logs / "milvus-stderr.log", "ab") as err:
            self.proc = subprocess.Popen(cmd, cwd=self.folder, env=env, stdout=out, stderr=err,
                                         start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                tail = (logs / "milvus-stderr.log").read_text(errors="replace")[-1500:]
                self.proc = None
                raise RuntimeError(f"the Milvus server exited at start:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/healthz", timeout=2) as r:
                    if b"OK" in r.read() and self._answers():
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"the Milvus server did not start in {START_TIMEOUT_S:.0f} s")

    def _answers(self) -> bool:
        """Whether the proxy serves a client (after a restart it may lag the health check)."""
        from pymilvus import MilvusClient

        try:
            client = MilvusClient(uri=self.uri, timeout=5)
            client.list_collections()
            client.close()
            return True
        except Exception:  # noqa: BLE001 - pymilvus raises several kinds for "not yet"
            return False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_bytes(self) -> int:
        """The server process's resident memory (VmRSS from /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self, timeout_s: float = 30.0) -> None:
        """A clean shutdown (SIGTERM), SIGKILL after timeout_s."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
