"""Metrics registered by name. Each takes an `EvalContext` and returns named values, always
with the feature extractor, the sample count and, for distances, the real-vs-real floor."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ganpipe.data.loading import load_manifest, load_tensors
from ganpipe.errors import ConfigError
from ganpipe.evaluate import stats
from ganpipe.gans.base import Sampler
from ganpipe.catalog import Catalog
from ganpipe.specs.metrics import METRIC_NAMES


@dataclass
class MetricResult:
    values: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)  # extractor, n, floor, ...


@dataclass
class EvalContext:
    sampler: Sampler
    data_dir: Path
    cache_dir: Path
    num_samples: int = 1000
    seed: int = 1234
    classifier_steps: int = 600
    inception_weights: str | None = None  # a configured weights file (storage.inception_weights)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return load_manifest(self.data_dir)

    def split(self, name: str) -> dict[str, torch.Tensor]:
        return self._splits.setdefault(name, load_tensors(self.data_dir, name))

    @cached_property
    def _splits(self) -> dict[str, dict[str, torch.Tensor]]:
        return {}

    @cached_property
    def heldout(self) -> dict[str, torch.Tensor]:
        """val + test: the real images a generator never saw."""
        parts = [self.split(s) for s in ("val", "test") if self.manifest["counts"].get(s)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    @cached_property
    def fake(self) -> torch.Tensor:
        from ganpipe.evaluate.progress import progress

        with progress(f"generating {self.num_samples} samples"):
            return self.sampler.generate(self.num_samples, seed=self.seed)

    @cached_property
    def classifier(self) -> tuple[Any, float]:
        from ganpipe.evaluate.classifier import load_or_train

        model, accuracy = load_or_train(self.data_dir, self.cache_dir, steps=self.classifier_steps)
        return model.to(self.sampler.device), accuracy  # features computed where the generator samples

    @cached_property
    def unseen_train(self) -> torch.Tensor:
        """Training images the classifier never trained on, in a seeded random order: the real
        side of real-vs-real floors in its feature space (see classifier.split_train)."""
        from ganpipe.evaluate.classifier import split_train

        train = self.split("train")["image"]
        return train[split_train(len(train))[1]]

    def classifier_features(self, images: torch.Tensor) -> np.ndarray:
        from ganpipe.evaluate.classifier import extract

        feats, _ = extract(self.classifier[0], images)
        return feats.numpy().astype(np.float64)


MetricFn = Callable[[EvalContext], MetricResult]
METRICS: Catalog[MetricFn] = Catalog("metric", names=METRIC_NAMES)  # names declared in ganpipe.specs.metrics


@METRICS.register("fcd")
def frechet_classifier_distance(ctx: EvalContext) -> MetricResult:
    """Fréchet distance in the classifier's feature space: generated vs held-out real images.

    The floor is the same distance from as many real images, training images the classifier
    never saw (`EvalContext.unseen_train`), to the same held-out set: no generator can be
    expected to go below it. Both sides have n = min(samples, unseen images) images, since
    the distance's bias depends on n; when fewer unseen images than samples exist, the value
    is measured on the first n samples too.
    """
    if not ctx.manifest.get("num_classes"):
        raise ConfigError("metric 'fcd' needs a labelled image data set", hint="use 'swd' for unlabelled images")
    real = ctx.heldout["image"]
    f_real = ctx.classifier_features(real)
    n = min(len(ctx.fake), len(ctx.unseen_train))
    f_fake = ctx.classifier_features(ctx.fake[:n])
    floor = fd(ctx.classifier_features(ctx.unseen_train[:n]), f_real)
    value = fd(f_fake, f_real)
    return MetricResult(
        {"fcd": value, "fcd_floor": floor, "classifier_test_accuracy": ctx.classifier[1]},
        {
            "extractor": "small CNN classifier (penultimate layer, 64-d)",
            "n_fake": n,
            "n_real": len(f_real),
            "n_floor": n,
            "floor_images": "training images the classifier was not trained on",
            "floor": floor,
        },
    )


def fd(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance; ReLU features can have dead dimensions (singular covariances)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.frechet_distance(a, b)


def evaluate(ctx: EvalContext, names: list[str]) -> tuple[dict[str, float], dict[str, Any]]:
    """Run the named metrics; returns (flat values, per-metric info)."""
    values: dict[str, float] = {}
    info: dict[str, Any] = {}
    for name in names:
        r = METRICS.get(name)(ctx)
        values.update({k: float(v) for k, v in r.values.items()})
        info[name] = r.info
    return values, info


# Family-specific metrics register themselves on import.
from ganpipe.evaluate import metrics_conditional, metrics_images, metrics_stacked, metrics_suite, metrics_toy, metrics_translation  # noqa: E402,F401
