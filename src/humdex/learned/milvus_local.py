"""A Milvus standalone server on this machine, without Docker: the server binary that PyPI's
`milvus` package ships (2.3, "embedded Milvus": etcd and rocksmq inside one process, data in a
folder; `pip install 'humdex[milvus-server]'`), started on free ports in a folder of its own.

    python -m humdex.learned.milvus_local --data DIR [--port 19530]   # until Ctrl+C

then `humdex index ... --store http://127.0.0.1:19530`. The package's own launcher
(`milvus-server`) starts the embedded etcd on fixed ports (2379/2380), so a second server on the
machine dies at start; it may also hand etcd's client port 2380 (the peer port) when 2379 is
taken, and the server then hangs; its wait for a dead server lasts 180 s. Here the etcd gets
free ports from a config file of its own, and a server that exits is reported at once. For tests,
benchmarks and small deployments; a production Milvus runs as Milvus documents it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Self

START_TIMEOUT_S = 120.0
SESSION_TTL_S = 8  # Milvus's default is 30 s: a restart after a crash waits for the old sessions


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
        if "\netcd:\n" not in text or ttl not in text:
            raise RuntimeError("the milvus package's config template changed: use milvus>=2.3.5,<2.4")
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

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, SIGKILL after timeout_s (Milvus 2.3 often takes its whole 30 s graceful-stop
        timeout; its data is durable either way: rocksmq and etcd on disk)."""
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Run a local Milvus standalone server until Ctrl+C.")
    p.add_argument("--data", required=True, help="its folder (binaries, data, logs)")
    p.add_argument("--port", type=int, default=19530)
    args = p.parse_args(argv)
    if not server_installed():
        print("humdex: error: no Milvus server binary: pip install 'humdex[milvus-server]'",
              file=sys.stderr)
        return 2
    server = LocalMilvus(Path(args.data), port=args.port)
    try:
        server.start()
    except RuntimeError as err:
        print(f"humdex: error: {err}", file=sys.stderr)
        return 2
    print(f"Milvus {server.uri} (pid {server.pid}, data {server.folder}); Ctrl+C stops it", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
