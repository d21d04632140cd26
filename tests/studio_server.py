"""A real Label Studio for the tests, started through `python -m training.studio serve`."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StudioServer:
    url: str
    token: str
    env: dict
    process: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(tmp: Path) -> StudioServer:
    port = free_port()
    token = secrets.token_hex(20)
    env = dict(os.environ)
    env.update({
        "LABEL_STUDIO_USERNAME": "tester@example.com",
        "LABEL_STUDIO_PASSWORD": secrets.token_hex(8),
        "LABEL_STUDIO_API_KEY": token,
        "DJANGO_DB": "sqlite",
    })
    log = tmp / "serve.log"
    handle = log.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "training.studio", "serve", "--port", str(port), "--data-dir", str(tmp / "data"),
         "--timeout", str(START_TIMEOUT)],
        cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    server = StudioServer(f"http://127.0.0.1:{port}", token, env, process, log)
    deadline = time.monotonic() + START_TIMEOUT + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"`training.studio serve` exited with {process.returncode}:\n{server.log_tail()}")
        if "Label Studio is running at" in log.read_text(encoding="utf-8", errors="replace"):
            with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
                assert response.status == 200
            return server
        time.sleep(0.5)
    stop(server)
    raise RuntimeError(f"Label Studio did not start within {START_TIMEOUT:.0f} s:\n{server.log_tail()}")


def stop(server: StudioServer) -> None:
    """SIGTERM to `serve` (it stops Label Studio); the whole process group if it lingers."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(server.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
