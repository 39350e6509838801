"""Hub processes for fault tests: ``hub worker --queue outbound`` as a real subprocess on the
test's own store and broker, so a test can SIGKILL it mid-delivery or run two of them at once.

Why a subprocess and not a thread: a thread cannot be killed -9, and two workers in one process
share one connector cache and one interpreter lock, which hides the races a second machine has.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.config import HubConfig

REPO = Path(__file__).resolve().parent.parent.parent
STOP_WAIT_S = 10.0


class HubWorker:
    """One ``hub worker --queue outbound`` process; its output goes to ``log_path``."""

    def __init__(self, config: HubConfig, log_path: Path) -> None:
        self.log_path = log_path
        env = dict(os.environ, GRIDHUB_DATABASE_URL=config.database_url, GRIDHUB_BROKER_URL=config.broker_url,
                   GRIDHUB_SECRET_KEY=config.secret_key, GRIDHUB_VAR_DIR=config.var_dir,
                   GRIDHUB_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--queue", "outbound"],
                                         cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is recorded, the claim stays as it was."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_WAIT_S)

    def stop(self) -> None:
        """SIGTERM (the worker finishes its pass and exits), SIGKILL if it does not."""
        if not self.alive:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the worker's output, for a failing assertion's message."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


class Workers:
    """Starts workers and guarantees they are all gone when the block ends."""

    def __init__(self, config: HubConfig, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.started: list[HubWorker] = []

    def start(self) -> HubWorker:
        worker = HubWorker(self.config, self.folder / f"worker-{len(self.started) + 1}.log")
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log_tail()}" for w in self.started)


@contextmanager
def outbound_workers(config: HubConfig, folder: Path) -> Iterator[Workers]:
    """Yield a :class:`Workers`; every worker started through it is stopped (killed if need be)
    whatever the test does."""
    workers = Workers(config, folder)
    try:
        yield workers
    finally:
        workers.stop_all()


def wait_for_port(host: str, port: int, seconds: float) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.5)
    return False
