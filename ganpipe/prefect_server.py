"""One local Prefect server per user, started on first use and reused by every later run.

Without PREFECT_API_URL, Prefect starts a temporary server inside every process: ~12 s of
each `ganpipe pipeline run` on 2 cores, and the run history is gone when the process ends.
ganpipe instead starts `prefect server start` once in the background (on 127.0.0.1, port
4200 when free), records it in `$PREFECT_HOME/ganpipe-server.json`, and points later
processes at it, so runs are browsable in the Prefect UI and schedules (`pipeline serve`)
work with no set-up. `GANPIPE_PREFECT_SERVER=temporary` keeps Prefect's own behaviour;
a PREFECT_API_URL that is already set always wins. `ganpipe prefect stop` stops the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ganpipe.errors import GanpipeError, ServiceError

MODE_ENV = "GANPIPE_PREFECT_SERVER"  # "local" (default) or "temporary"
MODES = ("local", "temporary")
PREFERRED_PORT = 4200
START_TIMEOUT_S = float(os.environ.get("GANPIPE_PREFECT_START_TIMEOUT_S", "180"))
CHECK_TIMEOUT_S = 5.0  # per request of `check_api`


@dataclass
class ServerInfo:
    pid: int
    port: int
    home: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def _record_file() -> Path:
    return prefect_home() / "ganpipe-server.json"


def mode() -> str:
    m = os.environ.get(MODE_ENV, "local").strip().lower() or "local"
    if m not in MODES:
        raise GanpipeError(f"{MODE_ENV}={m!r} is not a known mode", hint=f"use one of: {', '.join(MODES)}")
    return m


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as r:  # noqa: S310 (loopback URL we built)
            return r.status == 200
    except (OSError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_prefect_server(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the record, whose pid answered as a server when written
    return b"prefect" in b" ".join(cmd) and b"server" in cmd


def running() -> ServerInfo | None:
    """The recorded server if its process is alive and answers; None otherwise."""
    f = _record_file()
    try:
        info = ServerInfo(**json.loads(f.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(info.pid) and healthy(info.api_url):
        return info
    return None


def _port() -> int:
    for port in (PREFERRED_PORT, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise GanpipeError("no free port on 127.0.0.1 for a Prefect server")


@contextlib.contextmanager
def _lock():
    """Two ganpipe processes starting at once share one server."""
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "ganpipe-server.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def start() -> ServerInfo:
    """Start the background server (or return the running one) and wait until it answers."""
    with _lock():
        info = running()
        if info:
            return info
        home = prefect_home()
        port = _port()
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        with open(home / "ganpipe-server.log", "ab") as log:
            # A session of its own: the server outlives this process and ignores its Ctrl-C.
            proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        info = ServerInfo(proc.pid, port, str(home))
        try:
            _wait_healthy(proc, info, home)
        except BaseException:  # a failed or interrupted start leaves no unrecorded server behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            raise
        tmp = _record_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(info.__dict__))
        tmp.replace(_record_file())
        return info


def _wait_healthy(proc: subprocess.Popen, info: ServerInfo, home: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GanpipeError(
                f"the local Prefect server exited with status {proc.returncode} while starting",
                hint=f"see {home / 'ganpipe-server.log'}, or set {MODE_ENV}=temporary",
            )
        if healthy(info.api_url, timeout=1.0):
            return
        time.sleep(0.5)
    raise GanpipeError(
        f"the local Prefect server did not answer within {START_TIMEOUT_S:.0f} s",
        hint=f"see {home / 'ganpipe-server.log'}; raise GANPIPE_PREFECT_START_TIMEOUT_S or set {MODE_ENV}=temporary",
    )


def stop(timeout: float = 30.0) -> ServerInfo | None:
    """Stop the recorded server; returns what was stopped (None when none was running)."""
    with _lock():
        f = _record_file()
        try:
            info = ServerInfo(**json.loads(f.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        f.unlink(missing_ok=True)
        if not _alive(info.pid) or not _is_prefect_server(info.pid):
            return None  # gone, or the pid now belongs to another process
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(info.pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.pid, os.WNOHANG)
            time.sleep(0.2)
        if _alive(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info.pid, signal.SIGKILL)
        return info


def ensure_api() -> str | None:
    """Point this process (and its children) at a Prefect API; call before importing prefect.

    Returns the API URL in use, or None when Prefect's temporary server is to be used."""
    if os.environ.get("PREFECT_API_URL"):
        check_api(os.environ["PREFECT_API_URL"])
        return os.environ["PREFECT_API_URL"]
    if mode() == "temporary":
        return None
    info = start()
    os.environ["PREFECT_API_URL"] = info.api_url
    return info.api_url


def _auth_header() -> dict[str, str]:
    """The header Prefect's own client sends: Basic for PREFECT_API_AUTH_STRING, else Bearer
    for PREFECT_API_KEY (Prefect Cloud)."""
    import base64

    if os.environ.get("PREFECT_API_AUTH_STRING"):
        return {"Authorization": "Basic " + base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()}
    if os.environ.get("PREFECT_API_KEY"):
        return {"Authorization": f"Bearer {os.environ['PREFECT_API_KEY']}"}
    return {}


def check_api(api_url: str, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Raise a one-line `ServiceError` within ~2 x `timeout` seconds when the Prefect API at
    `api_url` does not answer or refuses this client; Prefect's client would otherwise retry
    for minutes and end in a long traceback. Two requests: /health (open on every server),
    then /admin/version with the client's credentials (a server with an auth string or
    Prefect Cloud answers 401/403 without them)."""
    import urllib.error

    where = f"PREFECT_API_URL={api_url}"
    unset = "or unset PREFECT_API_URL to use ganpipe's local server"
    for path, headers in (("health", {}), ("admin/version", _auth_header())):
        req = urllib.request.Request(f"{api_url.rstrip('/')}/{path}", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout):  # noqa: S310 (the user's API URL)
                pass
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise ServiceError(
                    f"the Prefect API at {where} refuses this client (HTTP {e.code})",
                    hint="set PREFECT_API_AUTH_STRING to the server's PREFECT_SERVER_API_AUTH_STRING (user:password), or PREFECT_API_KEY for Prefect Cloud",
                ) from None
            if path == "health" or e.code >= 500:
                raise ServiceError(f"the Prefect API at {where} answers HTTP {e.code} to /{path}", hint=f"check that the URL ends in /api and the server is healthy, {unset}") from None
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            cause = f"no answer within {timeout:.0f} s" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else str(getattr(reason, "strerror", None) or reason)
            raise ServiceError(f"no Prefect server answers at {where} ({cause})", hint=f"start it (`prefect server start`), fix PREFECT_API_URL, {unset}") from None
