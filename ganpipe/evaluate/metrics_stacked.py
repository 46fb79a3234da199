"""Mode coverage on stacked digits (the VEEGAN / PacGAN stacked-MNIST protocol).

Each channel of a sample is labelled by a digits classifier trained on the data set's channels
(`classifier.channel_view`); the three labels make its mode (000-999). Reported over 25,600
samples, as in the papers: the modes covered, and the KL divergence KL(p || uniform) of the
mode histogram p to the uniform distribution of the data (0 when every mode is equally
frequent; log(1000 / k) when k modes are hit equally and the rest never). The same numbers on
as many real training images are the reference: a perfect generator matches them, not 1000
and 0 exactly (25,600 draws of 1000 modes leave a KL of about 0.02, classifier errors add).

Where the KL comes from: `stacked_kl_channels` is the sum over channels of each channel's digit
histogram's KL to uniform. The joint KL is that sum plus the channels' dependence (their
multi-information) plus sampling noise, so a KL mostly in `stacked_kl_channels` means G
favours some digits in every channel (or the classifier reads its digits so), not that it
couples the channels.
"""

from __future__ import annotations

import numpy as np
import torch

from ganpipe.errors import ConfigError
from ganpipe.evaluate.metrics import METRICS, EvalContext, MetricResult

NUM_SAMPLES = 25_600  # the published protocol's sample count
CHUNK = 2_560


def mode_coverage(modes: np.ndarray, num_modes: int) -> tuple[int, float]:
    """(modes hit at least once, KL(histogram || uniform) in nats) of integer mode ids."""
    counts = np.bincount(np.asarray(modes, dtype=np.int64), minlength=num_modes).astype(np.float64)
    p = counts / counts.sum()
    hit = p > 0
    return int(hit.sum()), float(np.sum(p[hit] * np.log(p[hit] * num_modes)))


def channel_kl(modes: np.ndarray, classes: int, channels: int) -> float:
    """Sum over channels of KL(channel's class histogram || uniform), in nats, of mode ids whose
    base-`classes` digits are the channels' classes (most significant first)."""
    modes = np.asarray(modes, dtype=np.int64)
    return sum(mode_coverage(modes // classes ** (channels - 1 - c) % classes, classes)[1] for c in range(channels))


@torch.no_grad()
def stacked_modes_of(classifier: torch.nn.Module, images: torch.Tensor, classes: int) -> np.ndarray:
    """Mode id of each stacked image [N, C, H, W] in [-1, 1]: its channels' classes as base-`classes` digits."""
    from ganpipe.evaluate.classifier import channel_view

    n, c = images.shape[:2]
    out = []
    for i in range(0, n, CHUNK):
        chunk = images[i : i + CHUNK].float()
        x, _ = channel_view(chunk, torch.zeros(len(chunk), dtype=torch.long), classes)
        digits = classifier(x).argmax(1).reshape(len(chunk), c)
        out.append((digits * classes ** torch.arange(c - 1, -1, -1)).sum(1))
    return torch.cat(out).numpy()


@METRICS.register("stacked_modes")
def stacked_modes(ctx: EvalContext) -> MetricResult:
    """Modes covered and KL to uniform among 25,600 samples (`eval.num_samples` does not apply)."""
    extra = ctx.manifest.get("extra", {})
    if not extra.get("channel_classes"):
        raise ConfigError("metric 'stacked_modes' needs a stacked data set (one class per channel)", hint="use data.source=stacked-digits")
    from ganpipe.evaluate.classifier import load_or_train
    from ganpipe.evaluate.progress import progress

    classes, channels = int(extra["channel_classes"]), int(ctx.manifest["channels"])
    num_modes = classes**channels
    clf, acc = load_or_train(ctx.data_dir, ctx.cache_dir, steps=ctx.classifier_steps, per_channel=True)
    with progress(f"generating {NUM_SAMPLES} samples"):
        fake = torch.cat([ctx.sampler.generate(min(CHUNK, NUM_SAMPLES - i), seed=ctx.seed + i) for i in range(0, NUM_SAMPLES, CHUNK)])
    fake_modes = stacked_modes_of(clf, fake, classes)
    covered, kl = mode_coverage(fake_modes, num_modes)
    train = ctx.split("train")["image"]
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx.seed))[:NUM_SAMPLES]]
    covered_real, kl_real = mode_coverage(stacked_modes_of(clf, real, classes), num_modes)
    return MetricResult(
        {
            "stacked_modes": float(covered),
            "stacked_kl": kl,
            "stacked_kl_channels": channel_kl(fake_modes, classes, channels),
            "stacked_modes_real": float(covered_real),
            "stacked_kl_real": kl_real,
            "stacked_modes_total": float(num_modes),
            "channel_classifier_test_accuracy": acc,
        },
        {
            "extractor": "small CNN digits classifier, one channel at a time",
            "n_fake": len(fake),
            "n_real": len(real),
            "real_images": "training images (seeded draw)",
        },
    )
