"""A real Label Studio for the tests, started through `python -m training.studio serve`, and
the checks that a server listens on 127.0.0.1 only."""

from __future__ import annotations

import errno
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

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300.0  # Label Studio starts in ~25 s alone, minutes on a loaded 2-core machine


LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def other_local_addresses() -> list[str]:
    """Every address of this machine but 127.0.0.1: the interfaces' IPv4 and IPv6 addresses
    (from psutil.net_if_addrs), ::1, and 127.0.0.2 (always there: all of 127/8 is local)."""
    import psutil

    addresses = {"127.0.0.2"}
    for entries in psutil.net_if_addrs().values():
        addresses.update(entry.address for entry in entries if entry.family in (socket.AF_INET, socket.AF_INET6))
    addresses.discard(LOOPBACK)
    return sorted(addresses)


def connect_error(address: str, port: int) -> int:
    """0 when a TCP connection to address:port succeeds, else its errno."""
    family, kind, proto, _, target = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(5)
        try:
            return sock.connect_ex(target)
        except OSError as exc:
            return exc.errno or -1


def assert_loopback_only(port: int, pids: set[int] | None = None) -> None:
    """127.0.0.1:port accepts connections, every other local address refuses them, and the
    listening sockets at `port` (and of `pids`, when given) are bound to 127.0.0.1."""
    import psutil

    assert connect_error(LOOPBACK, port) == 0
    answered = {address: os.strerror(code) if code else "accepted"
                for address in other_local_addresses() if (code := connect_error(address, port)) != errno.ECONNREFUSED}
    assert not answered, f"port {port} not refused on: {answered}"
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert {c.laddr.ip for c in listening if c.laddr.port == port} == {LOOPBACK}
    if pids:
        assert {c.laddr.ip for c in listening if c.pid in pids} == {LOOPBACK}, \
            [(c.pid, c.laddr) for c in listening if c.pid in pids]


@dataclass
class StudioServer:
    url: str
    token: str
    env: dict
    process: subprocess.Popen
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def pids(self) -> set[int]:
        """`serve` and its children (Label Studio)."""
        import psutil

        process = psutil.Process(self.process.pid)
        return {process.pid, *(child.pid for child in process.children(recursive=True))}

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(tmp: Path) -> StudioServer:
    """`serve` on a free port: Label Studio listens on 127.0.0.1 only (`--internal-host`), with
    SSRF protection on but for 127.0.0.1 (see training/studio/server.py)."""
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
