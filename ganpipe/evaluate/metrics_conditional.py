"""Metrics for class-conditional generators, measured with the data set's own classifier.

`cond_acc`: how often the classifier recognises the class G was asked for (Odena et al. 2017's
AC-GAN accuracy); chance is 1/K and the classifier's test accuracy is the ceiling a perfect
generator would reach. `cis`: the Inception Score (Salimans et al. 2016) with the classifier
in place of Inception; its reference is the score of held-out real images.
"""

from __future__ import annotations

import numpy as np
import torch

from ganpipe.errors import ConfigError
from ganpipe.evaluate.metrics import METRICS, EvalContext, MetricResult


def _logits(ctx: EvalContext, images: torch.Tensor) -> torch.Tensor:
    from ganpipe.evaluate.classifier import extract

    return extract(ctx.classifier[0], images)[1]


def _num_classes(ctx: EvalContext, metric: str) -> int:
    k = int(ctx.manifest.get("num_classes") or 0)
    if k < 2:
        raise ConfigError(f"metric {metric!r} needs a labelled image data set with at least 2 classes", hint="use 'swd' for unlabelled images")
    return k


@METRICS.register("cond_acc")
def conditional_accuracy(ctx: EvalContext) -> MetricResult:
    """Classifier accuracy on G(z, y) with y cycling over the classes (equal samples per class)."""
    k = _num_classes(ctx, "cond_acc")
    if ctx.sampler.num_classes != k:
        raise ConfigError(
            f"metric 'cond_acc' needs a class-conditional generator over the data's {k} classes "
            f"(this one has {ctx.sampler.num_classes})",
            hint="use a conditional family (cgan, biggan) or drop cond_acc from eval.metrics",
        )
    labels = torch.arange(ctx.num_samples) % k
    fake = ctx.sampler.generate(ctx.num_samples, seed=ctx.seed, labels=labels)
    hits = (_logits(ctx, fake).argmax(1) == labels).float()
    per_class = [float(hits[labels == c].mean()) for c in range(k)]
    return MetricResult(
        {"cond_acc": float(hits.mean()), "cond_acc_chance": 1.0 / k, "classifier_test_accuracy": ctx.classifier[1]},
        {"extractor": "small CNN classifier", "n_fake": len(fake), "per_class": per_class, "reference": ctx.classifier[1]},
    )


def inception_score(logits: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))) with p(y) the mean prediction over the set."""
    logp = torch.log_softmax(logits.double(), dim=1)  # [N, K]
    log_marginal = torch.logsumexp(logp, dim=0) - np.log(len(logp))  # [K]
    kl = (logp.exp() * (logp - log_marginal)).sum(1)  # [N]
    return float(kl.mean().exp())


@METRICS.register("cis")
def classifier_inception_score(ctx: EvalContext) -> MetricResult:
    """Classifier Inception Score of generated images (1 = useless, K = perfect) vs held-out real images."""
    k = _num_classes(ctx, "cis")
    value = inception_score(_logits(ctx, ctx.fake))
    real = inception_score(_logits(ctx, ctx.heldout["image"]))
    return MetricResult(
        {"cis": value, "cis_real": real, "cis_max": float(k)},
        {"extractor": "small CNN classifier", "n_fake": len(ctx.fake), "n_real": len(ctx.heldout["image"]), "reference": real},
    )
