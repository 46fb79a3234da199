"""Where a project's things live, decided once and passed to every stage.

A `Project` names the folder, the MLflow tracking store and artifact location, Ray Train's and
Ray Tune's storage, the DVC remote, and the local cache, spool and state folders. It is built
once (`Project.load`) by the CLI, a flow or a test, and handed to stages, `fit`, sweeps and
tracking; no other module reads the current folder or the environment to find these.

Each setting comes from the first of (highest precedence first):

1. the environment: `MLFLOW_TRACKING_URI` (the tracking store; the server then decides where
   artifacts go unless `storage.artifacts` says), `GANPIPE_PROJECT` (the folder, when the
   caller names none);
2. the config's `storage:` section;
3. the project settings file `ganpipe.yaml` in the project folder (its `storage:` section), for
   what every config of a project shares, e.g. the cluster's bucket;
4. defaults under the project folder: `mlflow.db`, `mlartifacts/`, `.ganpipe/runs`,
   `.ganpipe/tune`, and the local DVC remote `~/.cache/ganpipe/dvc-remote`.

`storage.root: s3://bucket/prefix` puts runs, sweeps, the DVC remote (and, with the default
SQLite store, MLflow artifacts) under one shared prefix: what nodes that share nothing but
object storage need.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from ganpipe.config import StorageConfig
from ganpipe.errors import ConfigError

SETTINGS_FILE = "ganpipe.yaml"
STATE_DIR = ".ganpipe"  # local, per project: caches, spool, locks; ignored by git


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def default_dvc_remote(env: Mapping[str, str]) -> str:
    base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(base / "ganpipe" / "dvc-remote")  # content-addressed: safe to share between projects


def read_settings(root: Path) -> StorageConfig:
    """The `storage:` section of the project's settings file (empty when there is none)."""
    f = root / SETTINGS_FILE
    if not f.is_file():
        return StorageConfig()
    try:
        raw = yaml.safe_load(f.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{f}: not valid YAML: {str(e)[:300]}") from None
    if not isinstance(raw, dict) or set(raw) - {"storage"}:
        raise ConfigError(f"{f}: only a `storage:` section belongs in the project settings file", hint="put other settings in a config file")
    try:
        return StorageConfig.model_validate(raw.get("storage") or {})
    except Exception as e:
        raise ConfigError(f"{f}: invalid storage section: {str(e)[:300]}", hint=f"valid keys: {', '.join(StorageConfig.model_fields)}") from None


@dataclass(frozen=True)
class Project:
    root: Path
    tracking_uri: str
    artifact_location: str | None  # for new experiments; None: the tracking server decides
    runs_storage: str  # Ray Train storage_path: checkpoints (shared on a cluster)
    tune_storage: str  # Ray Tune storage_path: sweep state
    dvc_remote: str  # where `dvc push` sends prepared data
    dvc_remote_set: bool  # the remote was named in storage settings (else the project's own DVC config wins)
    cache: Path  # local: evaluation classifiers, feature statistics
    spool: Path  # local: metrics a lost tracking server could not take
    state: Path  # local: locks and DVC bookkeeping
    inception_weights: str | None = None  # a configured InceptionV3 weights file (fid/kid/is)

    @classmethod
    def load(cls, root: str | Path | None = None, storage: StorageConfig | None = None, env: Mapping[str, str] | None = None) -> "Project":
        env = os.environ if env is None else env
        if root is None:
            root = env.get("GANPIPE_PROJECT") or "."
        root = Path(root).expanduser().resolve()
        layers = [storage or StorageConfig(), read_settings(root)]

        def pick(key: str) -> Any:
            return next((getattr(s, key) for s in layers if getattr(s, key) is not None), None)

        shared = pick("root")
        uri = env.get("MLFLOW_TRACKING_URI") or pick("tracking_uri") or f"sqlite:///{root / 'mlflow.db'}"
        local_store = uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri
        artifacts = pick("artifacts")
        if artifacts is None and local_store:
            artifacts = _join(shared, "mlartifacts") if shared else (root / "mlartifacts").as_uri()
        dvc_remote = pick("dvc_remote") or (_join(shared, "dvc") if shared else None)
        state = root / STATE_DIR
        return cls(
            root=root,
            tracking_uri=uri,
            artifact_location=artifacts,
            runs_storage=cls._place(pick("runs") or (_join(shared, "runs") if shared else None), root, state / "runs"),
            tune_storage=cls._place(pick("tune") or (_join(shared, "tune") if shared else None), root, state / "tune"),
            dvc_remote=dvc_remote or default_dvc_remote(env),
            dvc_remote_set=dvc_remote is not None,
            cache=state / "cache",
            spool=state / "spool",
            state=state,
            inception_weights=cls._place(weights, root, Path()) if (weights := pick("inception_weights")) else None,
        )

    @staticmethod
    def _place(value: str | None, root: Path, default: Path) -> str:
        """A remote URI as given; a local path absolute (relative ones are under the project)."""
        if value is None:
            return str(default)
        if "://" in value:
            return value
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (root / p).resolve())

    @property
    def store(self) -> Any:
        """The MLflow tracking store (`ganpipe.tracking.store.TrackingStore`)."""
        from ganpipe.tracking.store import TrackingStore

        return TrackingStore(self.tracking_uri, self.artifact_location)

    def path(self, *parts: str) -> Path:
        """A local state path of this project (locks, DVC bookkeeping)."""
        return self.state.joinpath(*parts)

    def run_dir(self, run_name: str) -> Path | None:
        """A training run's folder in Ray Train's storage, when that storage is a local path."""
        return None if is_remote(self.runs_storage) else Path(self.runs_storage) / run_name

    def to_dict(self) -> dict[str, Any]:
        """Plain strings, to hand the project to Ray workers and Tune trials."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Project":
        paths = {"root", "cache", "spool", "state"}
        return cls(**{k: (Path(v) if k in paths else v) for k, v in d.items()})

    def describe(self) -> dict[str, str]:
        """What `ganpipe ... --dry-run` and the docs show: each place, credentials masked."""
        from ganpipe.tracking.store import mask

        return {
            "project": str(self.root),
            "tracking": mask(self.tracking_uri),
            "artifacts": mask(self.artifact_location or "(the tracking server's default)"),
            "runs": mask(self.runs_storage),
            "tune": mask(self.tune_storage),
            "dvc remote": mask(self.dvc_remote) + ("" if self.dvc_remote_set else " (unless the project's DVC config names one)"),
            "cache": str(self.cache),
        }
