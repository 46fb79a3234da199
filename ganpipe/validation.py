"""The one step after parsing that needs the catalogs: names, family params, family rules.

`build_config` runs it on every config, so a wrong family, loss, metric or data source fails
at load time with the valid names. It reads the torch-free `ganpipe.specs`, so config errors
and `ganpipe train --dry-run` never import torch.
"""

from __future__ import annotations

from pydantic import ValidationError

from ganpipe.config import PipelineConfig, format_errors, non_finite
from ganpipe.errors import ConfigError
from ganpipe.specs.families import FAMILY_SPECS
from ganpipe.specs.losses import LOSS_SPECS
from ganpipe.specs.metrics import METRIC_NAMES


def validate(cfg: PipelineConfig) -> PipelineConfig:
    """Check `cfg`'s names and fill in the family's params defaults (in place; returns `cfg`).

    Raises `UnknownNameError` listing the valid names, or `ConfigError` for a bad combination.
    Running it again on its own result changes nothing.
    """
    family = FAMILY_SPECS.get(cfg.model.family)
    LOSS_SPECS.get(cfg.loss.name)
    # Family-specific params are typed by the family; defaults filled in here, so the resolved
    # config (and its fingerprint) spells them out.
    try:
        params = family.Params.model_validate(cfg.model.params)
    except ValidationError as e:
        unknown = sorted(str(err["loc"][0]) for err in e.errors() if err["type"] == "extra_forbidden")
        hint = None
        if unknown:  # often params of another family, left behind by `--set model.family=...`
            hint = f"{cfg.model.family} params: {', '.join(sorted(family.Params.model_fields))}; remove {', '.join(unknown)}"
        raise ConfigError(format_errors(e, prefix="model.params"), hint=hint) from None
    object.__setattr__(cfg.model, "params", params.model_dump())
    bad = non_finite(cfg.model_dump())
    if bad:
        raise ConfigError(f"invalid config: {', '.join(bad)} must be a finite number (got nan or inf)")
    for m in cfg.eval.metrics:  # fail now, not after training
        METRIC_NAMES.get(m)
    family.check(cfg)
    if cfg.train.augment and not family.augment:
        augmentable = [n for n in FAMILY_SPECS if FAMILY_SPECS.get(n).augment]
        raise ConfigError(
            f"train.augment: DiffAugment applies where D judges single images ({', '.join(augmentable)}), not family {cfg.model.family}",
            hint="set train.augment=off",
        )
    check_labels(cfg)
    check_sync_bn(cfg, family.batchnorm(cfg.model.params))
    return cfg


def check_sync_bn(cfg: PipelineConfig, has_batchnorm: bool) -> None:
    t = cfg.train
    if not t.sync_bn:
        return
    if not has_batchnorm:
        raise ConfigError(
            f"train.sync_bn: family {cfg.model.family} has no BatchNorm layers with these params",
            hint="set train.sync_bn=false",
        )
    if t.use_gpu is False and t.num_workers > 1:
        raise ConfigError(
            "train.sync_bn needs GPU workers: PyTorch's SyncBatchNorm does not run on the CPU",
            hint="set train.use_gpu=true (or auto on a GPU cluster), or train.sync_bn=false",
        )


def check_labels(cfg: PipelineConfig) -> None:
    """`data.labels` labels the files of an image folder; any other source would ignore it."""
    if cfg.data.labels and not cfg.data.source.startswith("imagefolder:"):
        raise ConfigError(
            f"data.labels is set but data.source is {cfg.data.source!r}: a labels file labels the images of an imagefolder: source",
            hint="use data.source=imagefolder:PATH with it, or unset data.labels",
        )
