"""Training progress on the driver: rank 0 sends one small JSON line per log point over a TCP
connection to a thread of the driver, which renders it.

Why a socket: the driver and rank 0 may be on different nodes, and every Ray actor (a
`ray.util.queue.Queue` is one) is a process that wakes 100 times a second and takes CPU from
training on a small machine; Ray Train's report waits for its controller's 2-s poll. A socket
costs rank 0 one `send` of ~300 bytes per log point (which already syncs with the host) and
the driver a thread asleep in `recv`. If rank 0 cannot reach the driver, it stops sending and
training goes on; the run is still tracked in MLflow.

Three parts: `ProgressSender` (rank 0, a loop sink), `ProgressListener` (the driver's thread)
and the views (`LiveView` on a terminal, `LineView` otherwise: one line per log point).
`format_line`, `eta_s` and `fmt_duration` are pure, for the views and their tests.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

log = logging.getLogger(__name__)

# -- the record and its rendering (pure) -------------------------------------------------------

LOSS_KEYS = ("loss_d", "loss_g")


def record(metrics: dict[str, float], step: int, steps: int, images_per_step: int) -> dict[str, Any]:
    """What rank 0 sends at a log point: the step, the run's length, the recent rate, the
    losses and any evaluation metric (the loop's metrics at that point, nothing computed)."""
    rec: dict[str, Any] = {"step": step, "steps": steps, "start": int(metrics.get("start_step", 0)), "ips": metrics.get("images_per_s_window", 0.0), "per_step": images_per_step}
    rec.update({k: metrics[k] for k in LOSS_KEYS if k in metrics})
    rec.update({k: v for k, v in metrics.items() if k.startswith("eval.")})
    return rec


def eta_s(step: int, steps: int, images_per_s: float, images_per_step: int) -> float | None:
    """Seconds left at the recent rate; None before a rate is known."""
    if images_per_s <= 0 or images_per_step <= 0:
        return None
    return max(steps - step, 0) * images_per_step / images_per_s


def fmt_duration(seconds: float | None) -> str:
    """`m:ss`, or `h:mm:ss` from an hour; `?` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_value(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def metric_parts(rec: dict[str, Any]) -> list[str]:
    parts = [f"{name} {fmt_value(rec[k])}" for k, name in (("loss_d", "D"), ("loss_g", "G")) if k in rec]
    parts += [f"{k.removeprefix('eval.')} {fmt_value(v)}" for k, v in sorted(rec.items()) if k.startswith("eval.")]
    return parts


def format_line(rec: dict[str, Any], elapsed: float) -> str:
    """One plain line per log point, e.g.
    `step 50/3000 (2%) | 1020 img/s | elapsed 0:07 eta 2:54 | D 1.26 G 0.823`."""
    step, steps = rec["step"], rec["steps"]
    pct = 100.0 * step / steps if steps else 100.0
    eta = eta_s(step, steps, rec.get("ips", 0.0), rec.get("per_step", 0))
    parts = [f"step {step}/{steps} ({pct:.0f}%)", f"{rec.get('ips', 0.0):.0f} img/s", f"elapsed {fmt_duration(elapsed)} eta {fmt_duration(eta)}"]
    metrics = metric_parts(rec)
    return " | ".join(parts + ([" ".join(metrics)] if metrics else []))


# -- the views ----------------------------------------------------------------------------------


@dataclass
class View:
    """Shows a run's progress; `update` is called with each record (from the listener's thread)."""

    title: str
    link: str = ""
    t0: float = field(default_factory=time.perf_counter)

    def start(self) -> None: ...

    def update(self, rec: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


@dataclass
class LineView(View):
    """Not a terminal (CI, Prefect logs, a pipe): a header, then one line per log point."""

    out: TextIO | None = None

    def _print(self, text: str) -> None:
        out = self.out or sys.stdout
        out.write(text + "\n")
        out.flush()

    def start(self) -> None:
        self._print(f"training {self.title}" + (f" (MLflow run {self.link})" if self.link else ""))

    def update(self, rec: dict[str, Any]) -> None:
        self._print(format_line(rec, time.perf_counter() - self.t0))


@dataclass
class LiveView(View):
    """A terminal: one live block (title and link; bar, step/total, images/s, elapsed, ETA;
    losses and metrics), redrawn at each log point only (no refresh thread)."""

    console: Any = None
    _live: Any = None
    _last: dict[str, Any] | None = None

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        head = Text.assemble(("training ", "bold"), (self.title, "bold cyan"), (f"  MLflow run {self.link}" if self.link else "", "dim"))
        rec = self._last
        if rec is None:
            return Group(head, Text("starting Ray workers ...", style="dim"))
        step, steps = rec["step"], rec["steps"]
        row = Table.grid(padding=(0, 1))
        row.add_row(
            ProgressBar(total=max(steps, 1), completed=step, width=30),
            Text(f"{step}/{steps}", style="bold"),
            Text(f"{rec.get('ips', 0.0):.0f} img/s"),
            Text(f"elapsed {fmt_duration(time.perf_counter() - self.t0)}"),
            Text(f"eta {fmt_duration(eta_s(step, steps, rec.get('ips', 0.0), rec.get('per_step', 0)))}"),
        )
        return Group(head, row, Text("  ".join(metric_parts(rec))))

    def start(self) -> None:
        from rich.live import Live

        self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
        self._live.start(refresh=True)

    def update(self, rec: dict[str, Any]) -> None:
        self._last = rec
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def make_view(title: str, link: str = "", console: Any = None) -> View:
    """`LiveView` when the console is a terminal, else `LineView`: never both."""
    from rich.console import Console

    console = console or Console()
    if console.is_terminal:
        return LiveView(title, link, console=console)
    return LineView(title, link, out=console.file)


# -- the channel ----------------------------------------------------------------------------------


class ProgressListener:
    """The driver's end: listens on `host` (a free port), accepts rank 0's connections (a new
    one after each worker restart), checks their token and hands each record to `on_record`.
    One thread, asleep in `select` until a connection or a line arrives: it never polls.
    `close` wakes it; it first takes whatever has already arrived, then stops."""

    def __init__(self, on_record: Callable[[dict[str, Any]], None], host: str = "127.0.0.1"):
        import selectors

        self.on_record = on_record
        self.token = secrets.token_hex(16)
        self._server = socket.create_server((host, 0))
        self._server.setblocking(False)
        self.address = (host, self._server.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._server, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._buffers: dict[socket.socket, bytes] = {}
        self._authed: set[socket.socket] = set()
        self.records = 0
        self._thread = threading.Thread(target=self._run, name="ganpipe-progress", daemon=True)

    def start(self) -> "ProgressListener":
        self._thread.start()
        return self

    def _run(self) -> None:
        stopping = False
        while True:
            events = self._sel.select(timeout=0 if stopping else None)
            if stopping and not events:
                break  # everything that had arrived is taken
            for key, _ in events:
                if key.data == "wake":
                    self._wake_r.recv(16)
                    stopping = True
                elif key.data == "accept":
                    self._accept()
                else:
                    self._receive(key.fileobj)  # type: ignore[arg-type]
        for conn in list(self._buffers):
            self._drop(conn)
        self._sel.close()

    def _accept(self) -> None:
        import selectors

        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        conn.setblocking(False)
        self._buffers[conn] = b""
        self._sel.register(conn, selectors.EVENT_READ, "conn")

    def _receive(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # rank 0 closed the connection (end of the loop, or the worker died)
            self._drop(conn)
            return
        *lines, self._buffers[conn] = (self._buffers[conn] + data).split(b"\n")
        for line in lines:
            if conn not in self._authed:
                if line.decode(errors="replace").strip() != self.token:
                    self._drop(conn)  # not our rank 0
                    return
                self._authed.add(conn)
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            self.records += 1
            try:
                self.on_record(rec)
            except Exception as e:  # a view's failure must not end the run
                log.debug("progress view failed: %s", e)

    def _drop(self, conn: socket.socket) -> None:
        self._sel.unregister(conn)
        self._buffers.pop(conn, None)
        self._authed.discard(conn)
        conn.close()

    def close(self, wait_s: float = 5.0) -> None:
        """Stop listening, after showing the records that have already arrived."""
        if self._thread.is_alive():
            self._wake_w.send(b"x")
            self._thread.join(wait_s)
        for s in (self._server, self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass


class ProgressSender:
    """Rank 0's end, used as a loop sink: one JSON line per log point to the driver. Connects
    at the first log point; on any socket error it goes silent for the rest of the run
    (progress is a convenience, training is not held up for it)."""

    def __init__(self, address: tuple[str, int] | list[Any], token: str, steps: int, images_per_step: int, timeout_s: float = 2.0):
        self.address = (str(address[0]), int(address[1]))
        self.token, self.steps, self.images_per_step, self.timeout_s = token, steps, images_per_step, timeout_s
        self._sock: socket.socket | None = None
        self._dead = False

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self._dead:
            return
        line = json.dumps(record(metrics, step, self.steps, self.images_per_step)) + "\n"
        try:
            if self._sock is None:
                self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
                self._sock.sendall((self.token + "\n").encode())
            self._sock.sendall(line.encode())
        except OSError as e:
            self._dead = True
            log.warning("training progress cannot reach the driver at %s:%d (%s); training goes on, progress is in MLflow", *self.address, e)
            self.flush()

    def log_samples(self, images: Any, step: int) -> None:
        pass

    def flush(self) -> None:
        """At the end of the loop: close the connection (the driver sees the end of the stream)."""
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None


class Progress:
    """The driver's side for one `fit`: a view and a listener. `worker_config()` is what rank 0
    needs (`ProgressSender(**...)`, plus the run's length)."""

    def __init__(self, view: View, host: str = "127.0.0.1"):
        self.view = view
        self.listener = ProgressListener(view.update, host)

    def __enter__(self) -> "Progress":
        self.view.start()
        self.listener.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.listener.close()
        self.view.close()

    def worker_config(self) -> dict[str, Any]:
        return {"address": list(self.listener.address), "token": self.listener.token}
