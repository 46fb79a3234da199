"""How loud ganpipe and the libraries it drives are on the terminal, decided in one place.

By default a run shows its own output (progress, summaries), warnings and errors; the INFO
lines of Ray (instance start, Ray Train's worker-group, checkpoint and report dumps), of
MLflow (database set-up, artifact download bars) and Ray's token-authentication notice do not
reach the terminal. `-v/--verbose` on the CLI or `GANPIPE_LOG_LEVEL=INFO|DEBUG` lets them
through. Nothing is lost: Ray keeps every log of a run, Ray Train's at DEBUG, in its session
folder (`ray_logs_hint` names it when a run fails).

`configure` is called by the CLI's root callback and by the flows; `level` is what the rest
of ganpipe asks (`driver.fit` passes it to Ray Train and its workers, `local_ray.ensure_ray`
to `ray.init`).
"""

from __future__ import annotations

import logging
import os

LEVEL_ENV = "GANPIPE_LOG_LEVEL"  # DEBUG, INFO, WARNING (default), ERROR
DEFAULT = logging.WARNING

# Loggers of the libraries whose INFO lines are internal detail for a ganpipe user.
LIBRARY_LOGGERS = ("ray", "ray.train", "ray.tune", "ray.data", "mlflow", "alembic", "matplotlib")

_configured: list[int] = []  # the level `configure` chose in this process


def _from_env() -> int | None:
    name = os.environ.get(LEVEL_ENV, "").strip().upper()
    value = logging.getLevelName(name) if name else None
    return value if isinstance(value, int) else None


def level() -> int:
    """The level the terminal shows: the one `configure` chose, else `GANPIPE_LOG_LEVEL`, else WARNING."""
    if _configured:
        return _configured[-1]
    env = _from_env()
    return DEFAULT if env is None else env


def level_name(value: int | None = None) -> str:
    return logging.getLevelName(level() if value is None else value)


def verbose() -> bool:
    return level() <= logging.INFO


class _DropTokenNotice(logging.Filter):
    """Ray's notice that a local instance enabled token authentication by default: nothing is
    wrong and nothing is asked of the user. (Its warning that authentication is *disabled* stays.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Token authentication is enabled for this Ray cluster")


def configure(verbose: bool = False) -> int:
    """Set the terminal's level for this process and for what it starts (Ray's local instance,
    Prefect, MLflow) and return it: INFO with `verbose`, else `GANPIPE_LOG_LEVEL`, else WARNING
    (the more verbose of the two wins). Call before Prefect or MLflow is imported: both read
    their level from the environment when they are imported."""
    env = _from_env()
    chosen = min(logging.INFO if verbose else DEFAULT, env if env is not None else DEFAULT)
    _configured[:] = [chosen]
    os.environ[LEVEL_ENV] = logging.getLevelName(chosen)  # CLI subprocesses and local Ray workers inherit it
    quiet = chosen > logging.INFO
    # Libraries that read their settings from the environment (at import, or in child processes).
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")  # flow and task states are the pipeline's own output
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's temporary server can take longer than its default 20 s on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if quiet:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # "Creating initial MLflow database tables..."
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Loggers already created (a library imported before this call), and those created later.
    lib_level = max(chosen, logging.WARNING) if quiet else chosen
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(lib_level)
    token = logging.getLogger("ray._private.authentication.authentication_token_setup")
    token.filters = [f for f in token.filters if not isinstance(f, _DropTokenNotice)]
    if quiet:
        token.addFilter(_DropTokenNotice())
    return chosen


def configure_worker(value: int | str | None) -> None:
    """In a Ray Train worker: Ray Train sends the root logger's INFO lines (a library's
    start-up notes, e.g. matplotlib's font cache) to the console, which Ray forwards to the
    driver's terminal. Raise only the console handlers to the driver's level; the session's
    log files keep everything."""
    if value is None:
        return
    lv = value if isinstance(value, int) else logging.getLevelName(str(value).upper())
    if not isinstance(lv, int) or lv <= logging.INFO:
        return
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.setLevel(lv)
