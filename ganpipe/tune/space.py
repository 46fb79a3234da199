"""Sweep files: a typed search space over dotted config keys, a search algorithm and a
scheduler. Every key is checked against the config schema before any trial starts."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ganpipe.config import LossConfig, PipelineConfig, build_config, deep_merge, parse_overrides
from ganpipe.errors import ConfigError
from ganpipe.specs.losses import LOSS_SPECS

DOMAINS = ("grid", "choice", "uniform", "loguniform", "randint")


class SchedulerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["asha", "fifo", "pbt"] = "asha"
    grace_period: int = Field(200, ge=1)  # steps before ASHA may stop a trial
    reduction_factor: int = Field(2, ge=2)
    perturbation_interval: int = Field(500, ge=1)  # PBT: steps between exploit/explore
    # PBT: perturb only when every trial has reached the interval (Ray's synch=True), so each
    # perturbation ranks the whole population; asynchronous PBT ranks whoever has reported so far.
    synch: bool = False
    mutations: dict[str, Any] = Field(default_factory=dict)  # PBT: key -> domain (as in space)


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    metric: str | None = None  # an evaluation value (reported as eval.<metric>); default: registry.gate_metric
    mode: Literal["min", "max"] | None = None
    search: Literal["grid", "random", "optuna"] = "grid"
    num_samples: int = Field(1, ge=1)  # repeats of the grid / random draws
    max_concurrent_trials: int = Field(2, ge=1)
    seed: int | None = None  # fixes the random/Optuna draws, so two sweeps compare the same trials
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    space: dict[str, dict[str, Any]]
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted keys applied to every trial
    # Each trial's loss brings its paper's optimiser settings (ganpipe.specs.losses: WGAN's
    # RMSProp, WGAN-GP's Adam(1e-4, 0, 0.9), both with 5 critic steps), over the base config and
    # `overrides`, under the keys the trial samples itself: losses compared at their own recipes.
    loss_recipes: bool = False

    @model_validator(mode="after")
    def _domains(self) -> "SweepConfig":
        for key, dom in {**self.space, **self.scheduler.mutations}.items():
            if len(dom) != 1 or next(iter(dom)) not in DOMAINS:
                raise ValueError(f"space key {key!r}: give exactly one of {', '.join(DOMAINS)}, e.g. {{grid: [a, b]}}")
            kind, vals = next(iter(dom.items()))
            if not isinstance(vals, list) or not vals:
                raise ValueError(f"space key {key!r}: {kind} needs a non-empty list")
            if kind in ("uniform", "loguniform", "randint") and len(vals) != 2:
                raise ValueError(f"space key {key!r}: {kind} needs [low, high]")
        return self


def load_sweep(path: str | Path) -> SweepConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep file not found: {p}", hint="see configs/sweeps/ for examples")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
        return SweepConfig.model_validate(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ConfigError(f"{p}: invalid sweep: {errs}") from None


def dotted_to_nested(flat: dict[str, Any]) -> dict[str, Any]:
    return parse_overrides([f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}" for k, v in flat.items()])


def trial_config(base: dict[str, Any], sweep: SweepConfig, params: dict[str, Any]) -> PipelineConfig:
    """The base config + sweep overrides (+ the trial's loss recipe) + one trial's sampled
    values, validated."""
    raw = deep_merge(base, dotted_to_nested(sweep.overrides))
    if sweep.loss_recipes:
        raw = deep_merge(raw, dotted_to_nested(loss_recipe(deep_merge(raw, dotted_to_nested(params)))))
    raw = deep_merge(raw, dotted_to_nested(params))
    return build_config(raw, source="trial")


def loss_recipe(raw: dict[str, Any]) -> dict[str, Any]:
    """The dotted keys of the paper recipe of `raw`'s loss ({} for a loss without one)."""
    name = (raw.get("loss") or {}).get("name", LossConfig().name)
    return dict(LOSS_SPECS.get(name).recipe)


def representative_points(sweep: SweepConfig) -> list[dict[str, Any]]:
    """Every grid/choice value (others at their low end): used to validate keys before launching."""
    keys, options = [], []
    for k, dom in sweep.space.items():
        kind, vals = next(iter(dom.items()))
        keys.append(k)
        options.append(vals if kind in ("grid", "choice") else [vals[0]])
    return [dict(zip(keys, combo)) for combo in itertools.product(*options)][:200]


def validate(base: dict[str, Any], sweep: SweepConfig) -> list[str]:
    """Fail fast on unknown keys; returns the reasons of combinations that cannot run."""
    invalid = []
    for point in representative_points(sweep):
        try:
            cfg = trial_config(base, sweep, point)
        except ConfigError as e:
            if "unknown key" in e.message:
                raise ConfigError(f"sweep space: {e.message}", hint=e.hint) from None
            invalid.append(f"{point}: {e.message}")
            continue
        check_scheduler(sweep, cfg)
    return invalid


def check_scheduler(sweep: SweepConfig, cfg: PipelineConfig) -> None:
    """PBT trials train in the trial's own process (Tune must own their checkpoints to exploit
    and explore), so each trial is one worker: with more, the request would be ignored."""
    if sweep.scheduler.name == "pbt" and cfg.train.num_workers > 1:
        raise ConfigError(
            f"scheduler pbt trains each trial in its own process, one worker (one GPU with train.use_gpu): "
            f"train.num_workers={cfg.train.num_workers} cannot be honoured",
            hint="set train.num_workers: 1 under the sweep's overrides (PBT's trials run side by side, "
            "up to max_concurrent_trials), or use scheduler asha or fifo, whose trials are Ray Train runs of num_workers workers",
        )


def to_tune(space: dict[str, dict[str, Any]], search: str) -> dict[str, Any]:
    from ray import tune

    out: dict[str, Any] = {}
    for k, dom in space.items():
        kind, v = next(iter(dom.items()))
        if kind == "grid":
            out[k] = tune.choice(v) if search != "grid" else tune.grid_search(v)
        elif kind == "choice":
            out[k] = tune.choice(v)
        elif kind == "uniform":
            out[k] = tune.uniform(float(v[0]), float(v[1]))
        elif kind == "loguniform":
            out[k] = tune.loguniform(float(v[0]), float(v[1]))
        elif kind == "randint":
            out[k] = tune.randint(int(v[0]), int(v[1]))
    return out
