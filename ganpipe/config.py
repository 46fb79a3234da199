"""Typed pipeline configs: YAML files hold overrides of the documented defaults below.

An unknown key, a wrong type or an unknown registry name is a `ConfigError` that names the
key and the valid choices. The resolved config is saved with every run, and checkpoints
carry it, so resuming never depends on the command line.

This module knows types and files only; names (family, loss, metrics, sources) and the
family's params are checked by `ganpipe.validation`, which `build_config` runs on every
config it returns.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ganpipe.errors import ConfigError

# Names that become folder names, MLflow run names and filter strings: one safe path component.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SAFE_NAME_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"


def _safe_name(v: str | None) -> str | None:
    if v is not None and not SAFE_NAME.fullmatch(v):
        raise ValueError(f"must be {SAFE_NAME_RULE}")
    return v


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    """Which data set and how it is prepared into Parquet shards."""

    source: str = "digits"  # built-in name or importer "imagefolder:PATH" / "aligned:PATH" / "unaligned:PATH"
    name: str | None = None  # key of the prepared data set; default: derived from the source
    image_size: int = Field(16, ge=2, le=1024)
    channels: Literal[1, 3] | None = None  # None: the source's native channel count
    val_fraction: float = Field(0.1, ge=0.0, lt=0.5)
    test_fraction: float = Field(0.1, ge=0.0, lt=0.5)
    seed: int = 0
    root: str = "prepared"  # prepared shards go to <root>/<name>
    raw_root: str = "data"  # raw files (tracked by data.dvc)
    use_dvc: bool = True  # run preparation through `dvc repro` (lineage + stage cache)
    on_bad_file: Literal["error", "skip"] = "error"  # skip: leave unreadable images out, listed in the manifest
    labels: str | None = None  # CSV/Parquet file (file,label) labelling the images of an imagefolder: source

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str | None) -> str | None:
        return _safe_name(v)

    @property
    def key(self) -> str:
        return self.name or dataset_key(self.source)


def dataset_key(source: str) -> str:
    """A filesystem-safe key for a source string: 'digits', 'imagefolder:/x/my pets' -> 'my-pets'."""
    if ":" in source:
        _, path = source.split(":", 1)
        source = Path(path).name or "data"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", source).strip("-").lower() or "data"


class ModelConfig(Section):
    family: str = "dcgan"
    z_dim: int = Field(64, ge=1)
    params: dict[str, Any] = Field(default_factory=dict)  # validated by the family's Params


class LossConfig(Section):
    name: str = "nonsaturating"
    n_critic: int = Field(1, ge=1)  # D steps per G step
    gp_weight: float = Field(10.0, ge=0.0)  # wgan-gp lambda
    clip_value: float = Field(0.01, gt=0.0)  # wgan weight clipping
    r1_weight: float = Field(0.0, ge=0.0)


class OptimConfig(Section):
    name: Literal["adam", "rmsprop"] = "adam"  # G's and D's optimiser (rmsprop: WGAN's, lr only)
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)  # Adam's betas
    beta2: float = Field(0.999, ge=0, lt=1)
    grad_clip: float | None = Field(None, gt=0)  # max grad norm for G and D; None = off
    skip_nonfinite: bool = False  # skip updates with NaN/inf gradients (costs one host sync per step)


class TrainConfig(Section):
    steps: int = Field(2000, ge=1)  # generator steps
    batch_size: int = Field(64, ge=1)  # per worker
    num_workers: int = Field(1, ge=1)
    use_gpu: bool | Literal["auto"] = "auto"
    cpus_per_worker: int = Field(1, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    log_every: int = Field(50, ge=1)
    sample_every: int = Field(500, ge=1)
    seed: int = 0
    max_failures: int = Field(2, ge=0)  # worker restarts from the latest checkpoint
    # Seconds a (re)started run waits, in total, for the cluster to place its workers (e.g. for
    # an autoscaler to replace a lost node) before failing with a named reason; 0 = forever.
    worker_wait_s: int = Field(900, ge=0)
    # Mixed precision: bf16 autocast; fp16 autocast with a gradient scaler per optimizer (GPUs
    # without bf16); off. Older configs' true/false read as bf16/off. Checked against the device
    # when training starts (bf16 on a GPU without it is an error naming fp16).
    amp: Literal["bf16", "fp16", "off"] = "off"
    channels_last: bool = False
    # On CUDA only, set when a worker starts: cuDNN autotunes its convolution algorithms for the
    # (fixed) shapes of the step, and float32 matmuls and convolutions use TF32 tensor cores.
    cudnn_benchmark: bool = True
    tf32: bool = True
    compile: bool = False  # torch.compile G and D's forward (in place; checkpoints unchanged)
    # BatchNorm statistics over the global batch (SyncBatchNorm; GPU workers only) instead of
    # each worker's own batch. Running statistics are averaged over workers before every
    # checkpoint and export either way.
    sync_bn: bool = False
    # memory: each worker decodes its slice of the split once and indexes batches in RAM (or on the
    # accelerator); stream: Ray Data reads and decodes the Parquet shards batch by batch, for a
    # split larger than a worker's memory.
    loader: Literal["memory", "stream"] = "memory"
    # DiffAugment (Zhao et al. 2020) for small data sets: these differentiable transforms, in
    # order, on real and generated images before every D call (families whose D judges single
    # images: dcgan, cgan, biggan). [] = off; "color,translation,cutout" is the paper's policy.
    augment: list[Literal["color", "translation", "cutout"]] = Field(default_factory=list)
    run_name: str | None = None  # default: <name>-<config hash>, so re-running resumes

    @field_validator("run_name")
    @classmethod
    def _run_name_ok(cls, v: str | None) -> str | None:
        return _safe_name(v)

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_policy(cls, v: Any) -> Any:
        # The reference's policy string ("color,translation,cutout"); "off"/"none"/"" = [].
        if isinstance(v, str):
            return [] if v.strip().lower() in ("", "off", "none") else [p.strip() for p in v.split(",")]
        return [] if v is False or v is None else v

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_bool(cls, v: Any) -> Any:
        # Before amp had a dtype it was a bool (true = bf16); YAML's `off` parses as false too.
        return {True: "bf16", False: "off"}.get(v, v) if isinstance(v, bool) else v


class EvalConfig(Section):
    metrics: list[str] = Field(default_factory=lambda: ["fcd"])
    num_samples: int = Field(1000, ge=10)
    classifier_steps: int = Field(600, ge=1)
    seed: int = 1234
    every: int = Field(0, ge=0)  # evaluate during training every N steps (0 = off; sweeps set it)
    during_training_samples: int = Field(500, ge=10)  # smaller sample for in-training evaluation


class RegistryConfig(Section):
    model_name: str | None = None  # default: ganpipe-<family>-<dataset>
    gate_metric: str = "fcd"
    mode: Literal["min", "max"] = "min"
    enabled: bool = True  # register the model after evaluation


class TrackingConfig(Section):
    experiment: str | None = None  # default: ganpipe-<name>


class StorageConfig(Section):
    """Where shared things live (see `ganpipe.project`); unset keys fall back to the project
    settings file `ganpipe.yaml`, then to folders in the project. Not part of the run's identity:
    moving storage does not retrain."""

    root: str | None = None  # e.g. s3://bucket/ganpipe: runs/, tune/, dvc/ (and mlartifacts/) under it
    runs: str | None = None  # Ray Train checkpoints (storage_path); default .ganpipe/runs
    tune: str | None = None  # Ray Tune sweep state; default .ganpipe/tune
    dvc_remote: str | None = None  # DVC remote URL for prepared data; default the project's DVC config
    tracking_uri: str | None = None  # MLflow tracking store; MLFLOW_TRACKING_URI wins; default sqlite mlflow.db
    artifacts: str | None = None  # MLflow artifact location for new experiments
    # torch-fidelity's InceptionV3 weights file (metrics fid/kid/is); default: the project cache
    # (.ganpipe/cache/inception/), then torch's hub cache, else downloaded once into the project cache
    inception_weights: str | None = None


class PipelineConfig(Section):
    name: str = "dcgan-digits"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", v):
            raise ValueError("name must be 1-64 letters, digits, '.', '_' or '-'")
        return v

    @property
    def model_name(self) -> str:
        return self.registry.model_name or f"ganpipe-{self.model.family}-{self.data.key}"

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or f"ganpipe-{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def fingerprint(self) -> str:
        """What the run is, not where it is stored: the run name's hash. Hashed as configs were
        before `faults` left them and `train.storage` became `storage.runs` (both at their
        defaults), so run names stay the same and re-running a config resumes or reuses its run.
        Likewise `train.amp` hashes as the bool it was (bf16 = true, off = false), and keys added
        since then hash only when they differ from their defaults (`_ADDED_KEYS`, and
        `_ADDED_FAMILY_PARAMS` per family)."""
        d = {k: v for k, v in self.to_dict().items() if k != "storage"}
        for section, added in _ADDED_KEYS.items():
            d = _without_defaults(d, section, added)
        d = _without_defaults(d, "model.params", _ADDED_FAMILY_PARAMS.get(d["model"]["family"], {}))
        train = d["train"]
        train = {**train, "amp": {"bf16": True, "off": False}.get(train["amp"], train["amp"]), "storage": ".ganpipe/runs"}
        d = {**d, **_FAULTS_OFF, "train": train}
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    @property
    def run_name(self) -> str:
        return self.train.run_name or f"{self.name}-{self.fingerprint()}"


# Keys added after run names were first hashed (dotted path of the section -> key -> default):
# a config that leaves them at the default hashes as before. `model.params` holds every
# family's filled-in params: a key only some family has is dropped only where it is present
# and at its default.
_ADDED_KEYS: dict[str, dict[str, Any]] = {
    "train": {"cudnn_benchmark": True, "tf32": True, "sync_bn": False, "augment": []},
    "data": {"on_bad_file": "error", "labels": None},
    "model.params": {"ema_start": 0, "standing_stats": 0},  # biggan
    "optim": {"name": "adam"},
}
# Params added to one family where another family has a key of the same name that was always
# hashed (toy's `pack`): dropped at their default for that family only.
_ADDED_FAMILY_PARAMS: dict[str, dict[str, Any]] = {"dcgan": {"pack": 1, "ema_decay": 0.0, "lr_final": 1.0, "decay_start": 0.0}}


def _without_defaults(d: dict[str, Any], section: str, added: dict[str, Any]) -> dict[str, Any]:
    """`d` with the keys of `section` (dotted) that sit at their `added` default left out."""
    head, _, rest = section.partition(".")
    node = d.get(head)
    if not isinstance(node, dict):
        return d
    if rest:
        return {**d, head: _without_defaults(node, rest, added)}
    return {**d, head: {k: v for k, v in node.items() if not (k in added and v == added[k])}}


# The section every config carried, with every fault off, before fault injection left the config.
_FAULTS_OFF = {"faults": {"nan_loss_at_step": None, "raise_at_step": None, "exit_at_step": None}}


def upgrade_saved(raw: dict[str, Any]) -> dict[str, Any]:
    """A config an earlier release saved (a run's resolved.yaml) in today's keys: its inert
    `faults` section (every fault off) dropped, `train.storage` moved to `storage.runs`. A saved
    config that injects a fault stays an error."""
    if not isinstance(raw, dict):
        return raw
    f = raw.get("faults")
    if isinstance(f, dict) and set(f) <= set(_FAULTS_OFF["faults"]) and all(v is None for v in f.values()):
        raw = {k: v for k, v in raw.items() if k != "faults"}
    train = raw.get("train")
    if isinstance(train, dict) and "storage" in train:
        raw = {**raw, "train": {k: v for k, v in train.items() if k != "storage"}}
        raw.setdefault("storage", {"runs": train["storage"]})
    return raw


def non_finite(value: Any, key: str = "") -> list[str]:
    """Dotted keys of NaN/inf floats anywhere in a dumped config (an infinite LR is no LR)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [key]
    if isinstance(value, dict):
        return [b for k, v in value.items() for b in non_finite(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, (list, tuple)):
        return [b for i, v in enumerate(value) for b in non_finite(v, f"{key}[{i}]")]
    return []


def _short(value: Any, limit: int = 120) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def format_errors(e: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
        else:
            parts.append(f"'{loc}': {err['msg']} (got {_short(err.get('input'))})")
    return "invalid config: " + "; ".join(parts)


def _valid_keys(model: type[BaseModel], dotted: str) -> list[str]:
    """Valid keys at the level where an unknown dotted key was found (for the error hint)."""
    parts = dotted.split(".")[:-1]
    cls: Any = model
    for p in parts:
        field = cls.model_fields.get(p) if hasattr(cls, "model_fields") else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        cls = field.annotation
    return sorted(cls.model_fields)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`["train.steps=100", "loss.name=hinge"]` -> nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value", hint="write e.g. --set train.steps=100")
        key, raw = item.split("=", 1)
        try:
            value = _parse_yaml(raw) if raw != "" else ""
        except ConfigError:
            value = raw  # not YAML (or not a valid date, number, ...): the plain string
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return out


# Besides YAMLError, PyYAML's constructors raise ValueError/TypeError/OverflowError (a date
# such as 2020-13-45, `!!int abc`) and deep nesting raises RecursionError.
_YAML_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError)


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except _YAML_ERRORS as e:
        raise ConfigError(f"not valid YAML: {type(e).__name__}: {str(e)[:300]}") from None


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "params":
            out[k] = deep_merge(out[k], v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


# Keys that left the config (moved or removed): a config that still has one is told where they went.
RETIRED: dict[tuple[str, ...], tuple[str, str]] = {
    ("train", "storage"): ("'train.storage' moved to 'storage.runs'", "write it as `storage.runs` (see README, Storage)"),
    ("faults",): (
        "the 'faults' section was removed from configs: fault injection is a test and drill API now",
        "delete the section; in a test or drill, pass faults=ganpipe.train.faults.Faults(...) to fit, run_training or run_sweep",
    ),
}


def _check_retired(raw: dict[str, Any], source: str) -> None:
    for path, (message, hint) in RETIRED.items():
        node: Any = raw
        for key in path:
            if not (isinstance(node, dict) and key in node):
                break
            node = node[key]
        else:
            raise ConfigError(f"{source}: {message}", hint=hint)


def build_config(raw: dict[str, Any], source: str = "config") -> PipelineConfig:
    """A checked config from a dict: types here, then names and family rules (`validate`)."""
    # Imported here, not at the top: validation needs the types above, and this module stays
    # a leaf that anything may import (the names it checks are torch-free: ganpipe.specs).
    from ganpipe.validation import validate

    _check_retired(raw, source)
    try:
        return validate(PipelineConfig.model_validate(raw))
    except ValidationError as e:
        msg = format_errors(e)
        unknown = [".".join(map(str, err["loc"])) for err in e.errors() if err["type"] == "extra_forbidden"]
        hint = None
        if unknown:
            valid = _valid_keys(PipelineConfig, unknown[0])
            hint = f"valid keys there: {', '.join(valid)}" if valid else "remove the unknown key"
        raise ConfigError(f"{source}: {msg}", hint=hint) from None
    except ConfigError as e:
        raise ConfigError(f"{source}: {e.message}", hint=e.hint) from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> PipelineConfig:
    """Load a YAML config (or the defaults when `path` is None) and apply `--set` overrides."""
    raw: dict[str, Any] = {}
    src = "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}", hint="pass a path such as configs/dcgan-digits.yaml")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})", hint="save the config as UTF-8 YAML") from None
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config: {e.strerror or e}") from None
        try:
            loaded = _parse_yaml(text)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e.message}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: top level must be a mapping of sections, got {type(loaded).__name__}")
        raw = loaded
        src = str(p)
    raw = deep_merge(raw, parse_overrides(overrides))
    return build_config(raw, source=src)


def save_config(cfg: PipelineConfig, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return p
