"""The standard GAN evaluation suite, each metric beside the reference that gives it meaning.

Inception-based (`fid`, `kid`, `is`): torchmetrics with torch-fidelity's InceptionV3, its
weights from a configured file, the project cache or torch's hub cache, else downloaded once
into the project cache (never by torchmetrics mid-flow; offline, a clear error). Classifier-based
(`pr`, `memorisation`, `kid_classifier`): the data set's own small classifier (see
classifier.py), which works offline everywhere. Distances come with a real-vs-real floor from
an equally sized set of real training images against the same held-out images.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ganpipe.errors import ConfigError
from ganpipe.evaluate import stats
from ganpipe.evaluate.metrics import METRICS, EvalContext, MetricResult

WEIGHTS_ENV = "GANPIPE_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's release file
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
CLASSIFIER = "small CNN classifier (penultimate layer, 64-d)"
BATCH = 64  # default images per update; extractors say their own with `batch_size`


# ------------------------------------------------------------------------ Inception weights


def inception_weights(ctx: EvalContext) -> Path:
    """The InceptionV3 weights file: $GANPIPE_INCEPTION_WEIGHTS, else `storage.inception_weights`
    (a path named there must exist), else the project cache, else torch's hub cache (where
    torchmetrics and torch-fidelity download to), else downloaded once into the project cache.

    Checked before any torchmetrics object is built, because building one without a path
    starts torch-fidelity's own download (a hang or a late failure on an offline machine).
    """
    named = os.environ.get(WEIGHTS_ENV) or ctx.inception_weights
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            where = f"{WEIGHTS_ENV}={named}" if os.environ.get(WEIGHTS_ENV) else f"storage.inception_weights={named}"
            raise ConfigError(f"Inception weights not found at {path} ({where})", hint=_weights_hint(ctx))
        _require_fidelity()
        return path
    cached, hub = cache_path(ctx), Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    _require_fidelity()  # before any download
    for path in (cached, hub):
        if path.is_file():
            return path
    try:
        return download(WEIGHTS_URL, cached)
    except OSError as e:
        raise ConfigError(
            f"Inception weights not found (looked in the project cache {cached} and the torch hub cache {hub}) "
            f"and the download from {WEIGHTS_URL} failed: {type(e).__name__}: {str(e)[:200]}",
            hint=_weights_hint(ctx),
        ) from None


def cache_path(ctx: EvalContext) -> Path:
    return Path(ctx.cache_dir) / "inception" / WEIGHTS_FILE


def _weights_hint(ctx: EvalContext) -> str:
    return (
        f"on a machine with network, download {WEIGHTS_URL} and copy it to {cache_path(ctx)} "
        f"(or set {WEIGHTS_ENV} or storage.inception_weights to its path); "
        "or use the offline classifier metrics (fcd, kid_classifier, pr)"
    )


def download(url: str, dest: Path, timeout_s: float = 20.0) -> Path:
    """`url` into `dest` through a temporary file renamed at the end: an interrupted download
    never leaves a file that looks complete. Raises OSError (URLError, timeouts) offline."""
    import shutil
    import urllib.request

    from ganpipe.evaluate.progress import progress

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    try:
        with progress(f"downloading Inception weights to {dest}"), urllib.request.urlopen(url, timeout=timeout_s) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _require_fidelity() -> None:
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    if not _TORCH_FIDELITY_AVAILABLE:
        raise ConfigError(
            "metrics fid/kid/is need the torch-fidelity package (InceptionV3 for torchmetrics)",
            hint="pip install --no-deps torch-fidelity==0.4.0 (its torchvision dependency is not needed)",
        )


class InceptionFeatures(nn.Module):
    """torch-fidelity's InceptionV3 taking ganpipe images: N x C x H x W floats in [-1, 1]."""

    batch_size = 64  # 299 x 299 inputs: bounded memory

    def __init__(self, weights: Path, feature: str):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        try:
            self.net = NoTrainInceptionV3("inception-v3-compat", [feature], str(weights))
        except Exception as e:  # a truncated or foreign file: say which one
            raise ConfigError(f"cannot load Inception weights {weights}: {type(e).__name__}: {str(e)[:200]}", hint=f"use {WEIGHTS_FILE}") from None
        self.num_features = 1008 if feature == "logits_unbiased" else int(feature)

    def forward(self, images: Tensor) -> Tensor:
        x = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return self.net(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)


def inception(ctx: EvalContext, feature: str) -> InceptionFeatures:
    """The extractor for one Inception output ("2048", "logits_unbiased"); weights checked first."""
    return _load_inception(inception_weights(ctx), feature)


@lru_cache(maxsize=4)
def _load_inception(weights: Path, feature: str) -> InceptionFeatures:
    return InceptionFeatures(weights, feature)


def _update(metric: Any, images: Tensor, **kw: Any) -> None:
    """Feed images in the extractor's batch size: small CNNs run ~3x faster in big batches."""
    from ganpipe.evaluate.progress import progress

    batch = getattr(metric.inception, "batch_size", BATCH)
    what = f"{type(metric.inception).__name__} features ({'real' if kw.get('real') else 'generated'})"
    with torch.no_grad(), progress(what, total=len(images)) as advance:
        for i in range(0, len(images), batch):
            metric.update(images[i : i + batch], **kw)
            advance(len(images[i : i + batch]))


def _require_images(ctx: EvalContext, metric: str) -> None:
    if ctx.manifest.get("kind") not in ("images", None) or ctx.sampler.output_kind != "images":
        raise ConfigError(f"metric {metric!r} needs an image generator on image data", hint="use 'mixture' for 2-D points, 'paired'/'cyclegan' for translators")


def train_subset(ctx: EvalContext, n: int) -> Tensor:
    """n real training images (seeded): the 'perfect generator' for a real-vs-real floor."""
    train = ctx.split("train")["image"]
    g = torch.Generator().manual_seed(ctx.seed)
    return train[torch.randperm(len(train), generator=g)[: min(n, len(train))]]


def feed(metric: Any, real: Tensor, fake: Tensor) -> Any:
    """Update a torchmetrics fake-vs-real metric batch by batch and compute it."""
    _update(metric, real, real=True)
    _update(metric, fake, real=False)
    return metric.compute()


def _with_floor(
    ctx: EvalContext, metric: Any, result: Callable[[Any], tuple[float, ...]], floor_images: Tensor | None = None
) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    """(value, floor, n_floor) of a fake-vs-held-out metric; the real features are extracted once.
    The floor's images: `floor_images`, else as many training images as samples.

    The global torch generator (KID draws its subsets from it) is seeded inside a fork, so
    results repeat and the caller's random state is left alone.
    """
    with torch.random.fork_rng():
        torch.manual_seed(ctx.seed)
        value = result(feed(metric, ctx.heldout["image"], ctx.fake))
        metric.reset()  # fake features only (reset_real_features=False)
        sub = train_subset(ctx, len(ctx.fake)) if floor_images is None else floor_images
        _update(metric, sub, real=False)
        return value, result(metric.compute()), len(sub)


def kid_metric(feature: nn.Module, subset_size: int, subsets: int = 50) -> Any:
    """torchmetrics KID on any feature module, keeping the real features across resets."""
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "saves all features in a buffer": known and bounded here
        return KernelInceptionDistance(feature=feature, subsets=subsets, subset_size=subset_size, reset_real_features=False)


def _kid_size(ctx: EvalContext) -> int:
    return min(1000, len(ctx.heldout["image"]), len(ctx.fake), len(ctx.split("train")["image"]))


def _mean_std(t: Any) -> tuple[float, float]:
    return float(t[0]), float(t[1])


# ------------------------------------------------------------------ Inception-based metrics


@METRICS.register("fid")
def frechet_inception_distance(ctx: EvalContext) -> MetricResult:
    """FID (Heusel et al. 2017) with torchmetrics on 2048-d InceptionV3 pool features."""
    _require_images(ctx, "fid")
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=inception(ctx, "2048"), reset_real_features=False)
    (value,), (floor,), n_floor = _with_floor(ctx, fid, lambda t: (float(t),))
    return MetricResult(
        {"fid": value, "fid_floor": floor},
        {"extractor": "InceptionV3 pool3 (2048-d), torchmetrics", "n_fake": len(ctx.fake), "n_real": len(ctx.heldout["image"]), "n_floor": n_floor, "floor": floor},
    )


@METRICS.register("kid")
def kernel_inception_distance(ctx: EvalContext) -> MetricResult:
    """KID (Binkowski et al. 2018) with torchmetrics: unbiased, so usable at small sample counts."""
    _require_images(ctx, "kid")
    feature = inception(ctx, "2048")  # before any sampling: a missing file fails at once
    size = _kid_size(ctx)
    (value, std), (floor, _), n_floor = _with_floor(ctx, kid_metric(feature, size), _mean_std)
    return MetricResult(
        {"kid": value, "kid_std": std, "kid_floor": floor},
        {"extractor": "InceptionV3 pool3 (2048-d), torchmetrics", "n_fake": len(ctx.fake), "n_real": len(ctx.heldout["image"]), "n_floor": n_floor, "subset_size": size, "floor": floor},
    )


@METRICS.register("is")
def inception_score(ctx: EvalContext) -> MetricResult:
    """Inception Score (Salimans et al. 2016) with torchmetrics; the reference is held-out real images."""
    _require_images(ctx, "is")
    from torchmetrics.image.inception import InceptionScore

    feature = inception(ctx, "logits_unbiased")  # before any sampling: a missing file fails at once

    def score(images: Tensor) -> tuple[float, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = InceptionScore(feature=feature, splits=10)
        with torch.random.fork_rng():  # IS shuffles before its splits
            torch.manual_seed(ctx.seed)
            _update(m, images)
            return _mean_std(m.compute())

    value, std = score(ctx.fake)
    real, _ = score(ctx.heldout["image"])
    return MetricResult(
        {"is": value, "is_std": std, "is_real": real},
        {"extractor": "InceptionV3 logits (1008 classes), torchmetrics", "n_fake": len(ctx.fake), "n_real": len(ctx.heldout["image"]), "reference": real, "floor": real},
    )


# ----------------------------------------------------------------- classifier-based metrics


def _labelled(ctx: EvalContext, metric: str) -> None:
    _require_images(ctx, metric)
    if not ctx.manifest.get("num_classes"):
        raise ConfigError(f"metric {metric!r} works in the data set's classifier feature space and needs a labelled image data set", hint="use 'swd' (or fid/kid with Inception weights) for unlabelled images")


def _pr_values(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    return {**stats.precision_recall(real, fake, k=3), **stats.density_coverage(real, fake, k=5)}


@METRICS.register("pr")
def precision_recall(ctx: EvalContext) -> MetricResult:
    """Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

    Precision: fidelity (fakes inside the real manifold); recall: diversity (reals inside the
    fake manifold). k-NN manifolds depend on set sizes, so the reference (`*_real`) compares
    an equally sized set of real training images the classifier never saw with the same
    held-out set (n = min(samples, those images) on both sides).
    """
    _labelled(ctx, "pr")
    f_real = ctx.classifier_features(ctx.heldout["image"])
    n = min(len(ctx.fake), len(ctx.unseen_train))
    f_fake = ctx.classifier_features(ctx.fake[:n])
    sub = ctx.unseen_train[:n]
    value = _pr_values(f_real, f_fake)
    reference = _pr_values(f_real, ctx.classifier_features(sub))
    return MetricResult(
        {**value, **{f"{k}_real": v for k, v in reference.items()}},
        {"extractor": CLASSIFIER, "n_fake": len(f_fake), "n_real": len(f_real), "n_floor": len(sub), "k": {"precision_recall": 3, "density_coverage": 5}, "floor": reference},
    )


@METRICS.register("memorisation")
def memorisation(ctx: EvalContext) -> MetricResult:
    """Share of generated images that look like copies of training images (nearest neighbours).

    A sample is flagged when it is much nearer its nearest training image than its nearest
    held-out image, and nearly identical to it (stats.memorisation_report). The reference
    flags real images the generator never saw: half the held-out set as 'samples' against the
    other half, so both runs use the same training and held-out references.
    """
    _labelled(ctx, "memorisation")
    held = ctx.heldout["image"]
    perm = torch.randperm(len(held), generator=torch.Generator().manual_seed(ctx.seed))
    queries, heldout = held[perm[: len(held) // 2]], held[perm[len(held) // 2 :]]
    f_train = ctx.classifier_features(ctx.split("train")["image"])
    f_held = ctx.classifier_features(heldout)
    fake = stats.memorisation_report(ctx.classifier_features(ctx.fake), f_train, f_held, seed=ctx.seed)
    real = stats.memorisation_report(ctx.classifier_features(queries), f_train, f_held, seed=ctx.seed)
    return MetricResult(
        {
            "memorisation_share": fake["share_flagged"],
            "memorisation_median_ratio": fake["median_ratio"],
            "memorisation_share_real": real["share_flagged"],
            "memorisation_median_ratio_real": real["median_ratio"],
        },
        {
            "extractor": CLASSIFIER,
            "n_fake": len(ctx.fake),
            "n_train": len(f_train),
            "n_heldout": len(f_held),
            "n_floor": len(queries),
            "floor": real["share_flagged"],
            "top_flagged_indices": fake["top_flagged_indices"],
            "rule": "d_train / d_heldout < 0.5 and d_train < 0.1 x median train-to-train NN distance",
        },
    )


class ClassifierFeatures(nn.Module):
    """The data set's classifier (penultimate layer) as a torchmetrics `feature` module."""

    batch_size = 512  # as classifier.extract

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.head.in_features

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.features(images.float())


@METRICS.register("kid_classifier")
def kid_classifier(ctx: EvalContext) -> MetricResult:
    """KID on the classifier's features (torchmetrics): FCD's unbiased sibling, comparable across sample counts."""
    _labelled(ctx, "kid_classifier")
    size = min(_kid_size(ctx), len(ctx.unseen_train))
    metric = kid_metric(ClassifierFeatures(ctx.classifier[0]), size)
    (value, std), (floor, _), n_floor = _with_floor(ctx, metric, _mean_std, ctx.unseen_train[: len(ctx.fake)])
    return MetricResult(
        {"kid_classifier": value, "kid_classifier_std": std, "kid_classifier_floor": floor},
        {"extractor": CLASSIFIER, "n_fake": len(ctx.fake), "n_real": len(ctx.heldout["image"]), "n_floor": n_floor, "subset_size": size, "floor": floor},
    )
