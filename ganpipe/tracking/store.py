"""The MLflow tracking store a project uses (`Project.store`), passed to every tracking call.

Credentials embedded in URIs are masked wherever a URI is printed, logged or tagged.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ganpipe.errors import TrackingError


def mask(uri: str) -> str:
    """'postgresql://user:secret@host/db' -> 'postgresql://user:***@host/db'."""
    return re.sub(r"(//[^:/@]+):([^@/]+)@", r"\1:***@", uri)


@dataclass(frozen=True)
class TrackingStore:
    uri: str
    artifact_location: str | None = None  # for experiments this store creates; None: the server decides

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.uri)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Point mlflow's fluent API (log_model, load_model) at this store for a block; the
        fluent API has no client argument, so it is set and restored here and nowhere else.
        mlflow also writes the URI into MLFLOW_TRACKING_URI (for subprocesses): that is
        restored too, so the next `Project.load` in this process is not misled by it."""
        import mlflow

        env_before = os.environ.get("MLFLOW_TRACKING_URI")
        before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
        mlflow.set_tracking_uri(self.uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before)
            if env_before is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = env_before

    def check_reachable(self, timeout: float = 10.0) -> None:
        """Fail fast, before any training, when the tracking store cannot be used: within about
        `timeout` seconds (one request, no retries) and in one line that says what to do."""
        if self.uri.startswith("sqlite:///"):
            folder = Path(self.uri[len("sqlite:///") :]).parent
            if not folder.exists() or not os.access(folder, os.W_OK):
                raise TrackingError(f"MLflow store folder {folder} is missing or not writable", hint="fix permissions or set MLFLOW_TRACKING_URI")
        env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(timeout)))}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            self.client().search_experiments(max_results=1)
        except Exception as e:  # any failure here means: do not start training
            raise self._unusable(e, timeout) from None
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _unusable(self, e: Exception, timeout: float) -> TrackingError:
        """The failure of `check_reachable` as one line with its fix."""
        where = mask(self.uri)
        text = mask(str(e))
        status = getattr(e, "get_http_status_code", lambda: None)()
        m = re.search(r"error code (\d{3})", text)
        status = int(m.group(1)) if m else status
        if status in (401, 403):
            return TrackingError(
                f"the MLflow tracking server at {where} refuses this client (HTTP {status})",
                hint="set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (basic auth) or MLFLOW_TRACKING_TOKEN to credentials the server accepts",
            )
        if not self.uri.startswith(("http://", "https://")):
            first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
            return TrackingError(f"the MLflow store {where} cannot be used: {type(e).__name__}: {first[:200]}", hint="fix MLFLOW_TRACKING_URI or the project's tracking_uri")
        if re.search(r"timed? ?out", text, re.I):
            cause = f"no answer within {timeout:.0f} s"
        elif "refused" in text.lower():
            cause = "connection refused"
        elif re.search(r"Name or service not known|nodename nor servname|getaddrinfo|Failed to resolve", text):
            cause = "unknown host"
        elif status:
            cause = f"HTTP {status}"
        else:
            cause = f"{type(e).__name__}: {' '.join(text.split())[:160]}"
        return TrackingError(f"no MLflow tracking server answers at {where} ({cause})", hint="start the tracking server (`mlflow server`), fix MLFLOW_TRACKING_URI, or unset it to track to the project's mlflow.db")
