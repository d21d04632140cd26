"""`serve`: a local Label Studio on 127.0.0.1, its data under `.studio/` (git-ignored).

The user, password and API token come from the environment (LABEL_STUDIO_USERNAME,
LABEL_STUDIO_PASSWORD, LABEL_STUDIO_API_KEY) and are handed to Label Studio through its
own environment variables, never on the command line (visible in `ps`) nor in a file of
ours. Legacy API tokens are enabled (`--enable-legacy-api-token`, required since 1.17 for
a token given at start), so the same token works for the SDK commands. The update check
(a request to pypi.org) and error reporting to Label Studio's Sentry are off. Because the
server only listens on 127.0.0.1 and the ML backend (`python -m training.studio backend`)
runs there too, `ML_BLOCK_LOCAL_IP=false` and `SSRF_PROTECTION_ENABLED=false` let Label
Studio call the backend and register its /webhook (both refuse 127.0.0.1 otherwise).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import StudioError

DEFAULT_DATA_DIR = ".studio"
HEALTH_TIMEOUT = 180.0


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
        "ML_BLOCK_LOCAL_IP": "false",  # the ML backend runs on 127.0.0.1 ...
        "SSRF_PROTECTION_ENABLED": "false",  # ... and Label Studio adds a webhook to its /webhook
        "SENTRY_DSN": "",  # Label Studio reports errors to its own Sentry by default
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "DJANGO_DB": env.get("DJANGO_DB", "sqlite"),
    })
    return env


def server_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-c", "import sys; from label_studio.server import main; sys.exit(main())",
            "start", "--no-browser", "--host", host, "--port", str(port),
            "--enable-legacy-api-token"]


def health(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:  # noqa: S310 (local URL)
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
    if health(url):
        raise StudioError(f"something already answers on {url}: choose another --port")
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
