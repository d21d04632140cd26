"""`serve`: a local Label Studio listening on 127.0.0.1 only, its data under `.studio/` (git-ignored).

The user, password and API token come from the environment (LABEL_STUDIO_USERNAME,
LABEL_STUDIO_PASSWORD, LABEL_STUDIO_API_KEY) and are handed to Label Studio through its
own environment variables, never on the command line (visible in `ps`) nor in a file of
ours. Legacy API tokens are enabled (`--enable-legacy-api-token`, required since 1.17 for
a token given at start), so the same token works for the SDK commands. The update check
(a request to pypi.org) and error reporting to Label Studio's Sentry are off.

Listening: Label Studio's `--host` only names the server in the URLs it generates (and is
ignored unless it starts with http://); the address its Django server binds is
`--internal-host`, default 0.0.0.0 (label_studio/server.py, `_app_run(host=internal_host)`;
label_studio/core/argparser.py). `serve` passes `--internal-host 127.0.0.1`, so Label
Studio listens on loopback only.

SSRF protection stays ON (`SSRF_PROTECTION_ENABLED`, `ML_BLOCK_LOCAL_IP`): Label Studio
refuses ML backend, webhook, storage and import URLs that resolve to a private, loopback,
link-local or otherwise reserved address (label_studio/core/utils/io.py `validate_ip`). The
ML backend (`python -m training.studio backend`) listens on 127.0.0.1, and Label Studio
calls it and registers a webhook to its /webhook, so exactly that one address is let
through: `USE_DEFAULT_BANNED_SUBNETS=false` plus `USER_ADDITIONAL_BANNED_SUBNETS` = Label
Studio's own default list with 127.0.0.0/8 narrowed to everything but 127.0.0.1/32. (Turning
`ML_BLOCK_LOCAL_IP`/`SSRF_PROTECTION_ENABLED` off would open every private address, cloud
metadata at 169.254.169.254 included.) They are set under their `LABEL_STUDIO_` names, which
Label Studio reads before the bare ones, so a stray variable cannot turn them off.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import StudioError

DEFAULT_DATA_DIR = ".studio"
HEALTH_TIMEOUT = 180.0
LOOPBACK = "127.0.0.1"

# Label Studio 1.23's default banned subnets (label_studio/core/utils/io.py, validate_ip).
LABEL_STUDIO_BANNED_SUBNETS = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "233.252.0.0/24", "240.0.0.0/4", "255.255.255.255/32", "::/128", "::1/128", "::ffff:0:0/96",
    "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001:0000::/32", "2001:20::/28",
    "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "ff00::/8",
)


def banned_subnets(allowed: str = LOOPBACK) -> list[str]:
    """Label Studio's default banned subnets, less the one address `allowed`."""
    hole = ipaddress.ip_network(allowed)
    subnets = []
    for subnet in map(ipaddress.ip_network, LABEL_STUDIO_BANNED_SUBNETS):
        if subnet.version == hole.version and hole.subnet_of(subnet):
            subnets.extend(sorted(subnet.address_exclude(hole)))
        else:
            subnets.append(subnet)
    return [str(subnet) for subnet in subnets]


def studio_environment(data_dir: Path, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    username = env.get("LABEL_STUDIO_USERNAME")
    password = env.get("LABEL_STUDIO_PASSWORD")
    token = env.get("LABEL_STUDIO_API_KEY")
    missing = [name for name, value in (("LABEL_STUDIO_USERNAME", username), ("LABEL_STUDIO_PASSWORD", password),
                                        ("LABEL_STUDIO_API_KEY", token)) if not value]
    if missing:
        raise StudioError(f"set {', '.join(missing)} in the environment (the user e-mail, its password, and a "
                          "40-hex-character API token, e.g. python -c 'import secrets; print(secrets.token_hex(20))')")
    if "@" not in username:
        raise StudioError("LABEL_STUDIO_USERNAME must be an e-mail address (Label Studio logs in by e-mail)")
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir.resolve()),
        "LABEL_STUDIO_USER_TOKEN": token,
        "LATEST_VERSION_CHECK": "false",
        # SSRF protection on, with one hole: 127.0.0.1, where the ML backend listens (see the docstring)
        "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "true",
        "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "true",
        "LABEL_STUDIO_USE_DEFAULT_BANNED_SUBNETS": "false",
        "LABEL_STUDIO_USER_ADDITIONAL_BANNED_SUBNETS": ",".join(banned_subnets()),
        "SENTRY_DSN": "",  # Label Studio reports errors to its own Sentry by default
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "DJANGO_DB": env.get("DJANGO_DB", "sqlite"),
    })
    return env


def server_command(host: str, port: int) -> list[str]:
    """`label-studio start` listening on `host` (`--internal-host`: Label Studio's `--host` binds nothing)."""
    return [sys.executable, "-c", "import sys; from label_studio.server import main; sys.exit(main())",
            "start", "--no-browser", "--internal-host", host, "--port", str(port),
            "--enable-legacy-api-token"]


def port_in_use(host: str, port: int) -> bool:
    """Label Studio would silently move to the next free port: refuse a taken one instead."""
    with socket.socket() as sock:
        sock.settimeout(2.0)
        return sock.connect_ex((host, port)) == 0


def health(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_healthy(url: str, process: subprocess.Popen | None = None, timeout: float = HEALTH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StudioError(f"Label Studio exited with code {process.returncode} before answering {url}/health")
        if health(url):
            return
        time.sleep(0.5)
    raise StudioError(f"Label Studio did not answer {url}/health within {timeout:.0f} s")


def serve(port: int = 8080, host: str = "127.0.0.1", data_dir: str | Path = DEFAULT_DATA_DIR,
          timeout: float = HEALTH_TIMEOUT) -> int:
    """Start Label Studio, print its URL once /health answers, run until interrupted."""
    try:
        import label_studio  # noqa: F401
    except ImportError:
        raise StudioError("label-studio is not installed: pip install -e '.[studio]'") from None
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = studio_environment(data_dir)
    url = f"http://{host}:{port}"
    if port_in_use(host, port):
        raise StudioError(f"something already listens on {host}:{port}: choose another --port")
    process = subprocess.Popen(server_command(host, port), env=env)

    def interrupted(signum, frame):  # SIGTERM stops it like Ctrl-C; cleanup happens below
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        wait_healthy(url, process, timeout)
        print(f"Label Studio is running at {url} (data: {data_dir}/, user: $LABEL_STUDIO_USERNAME); Ctrl-C stops it",
              flush=True)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
