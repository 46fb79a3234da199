"""Where tracking goes: MLFLOW_TRACKING_URI, else a SQLite store in the project folder.

Credentials embedded in URIs are masked wherever a URI is printed, logged or tagged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ganpipe.errors import TrackingError


def project_dir() -> Path:
    return Path(os.environ.get("GANPIPE_PROJECT", os.getcwd())).resolve()


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{project_dir() / 'mlflow.db'}"


def artifact_root() -> str | None:
    """Artifact location for new experiments in the default local store (None: server decides)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (project_dir() / "mlartifacts").as_uri()


def mask(uri: str) -> str:
    """'postgresql://user:secret@host/db' -> 'postgresql://user:***@host/db'."""
    return re.sub(r"(//[^:/@]+):([^@/]+)@", r"\1:***@", uri)


def check_reachable(uri: str | None = None, timeout: float = 10.0) -> None:
    """Fail fast, before any training, when the tracking store cannot be used."""
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).parent
        if not folder.exists() or not os.access(folder, os.W_OK):
            raise TrackingError(f"MLflow store folder {folder} is missing or not writable", hint="fix permissions or set MLFLOW_TRACKING_URI")
    env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(timeout))}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as e:  # any failure here means: do not start training
        raise TrackingError(f"MLflow tracking at {mask(uri)} is unreachable: {type(e).__name__}: {mask(str(e))[:200]}", hint="start the tracking server or fix MLFLOW_TRACKING_URI") from None
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
