"""Evaluation speed on 10k samples: ganpipe's classifier-feature metric path against torchmetrics
used directly with the same feature extractor, in one process. Target: ratio <= 1.10.

    python benchmarks/eval_speed.py [--quick] [--n 10000] [--repeats 3] [--classifier-steps 200]

Both sides start from images. ganpipe's paths are the ones its metrics take, floors left out:
FD as `fcd` (EvalContext.classifier_features, then metrics.fd) and KID as `kid_classifier`
(metrics_suite.kid_metric on ClassifierFeatures, fed by metrics_suite.feed). The torchmetrics
side is FrechetInceptionDistance / KernelInceptionDistance given the classifier's feature layer
as their `feature` module, fed the same batches by a plain loop. Precision/recall and
density/coverage have no torchmetrics counterpart: timed alone. The two sides of a row run
alternately (the order flipping each repeat) and each figure is the best of --repeats, so
background load hits both alike; the classifier's training is not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from rich.console import Console
from rich.table import Table

from _common import result_line  # noqa: E402  (also puts the repo on sys.path)
from ganpipe.data.loading import load_tensors  # noqa: E402
from ganpipe.evaluate import metrics_suite as suite  # noqa: E402
from ganpipe.evaluate import stats  # noqa: E402
from ganpipe.evaluate.metrics import EvalContext, fd  # noqa: E402

BATCH = 512  # ganpipe.evaluate.classifier.extract's batch, used for torchmetrics too
TARGET = 1.10


def prepared_digits(root: Path) -> Path:
    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import prepare
    from ganpipe.data.sources import fetch

    fetch("digits", root / "data")
    out = root / "prepared" / "digits"
    prepare("digits", out, DataConfig(raw_root=str(root / "data")))
    return out


def jittered(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n images drawn from `images` with a little noise: distinct samples of a real-like set."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(images), (n,), generator=g)
    return (images[idx] + 0.1 * torch.randn(n, *images.shape[1:], generator=g)).clamp(-1, 1)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def best(fn: Callable[[], object], repeats: int) -> float:
    return min(timed(fn) for _ in range(repeats))


def best_pair(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best times of a and b, run alternately with the order flipped each repeat."""
    ta, tb = [], []
    for i in range(repeats):
        if i % 2:
            tb.append(timed(b))
            ta.append(timed(a))
        else:
            ta.append(timed(a))
            tb.append(timed(b))
    return min(ta), min(tb)


def torchmetrics_run(metric: object, real: torch.Tensor, fake: torch.Tensor) -> object:
    for i in range(0, len(real), BATCH):
        metric.update(real[i : i + BATCH], real=True)
    for i in range(0, len(fake), BATCH):
        metric.update(fake[i : i + BATCH], real=False)
    return metric.compute()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2,000 samples per set, best of 2 (about a minute)")
    ap.add_argument("--n", type=int, default=None, help="samples per set (default 10,000; quick 2,000)")
    ap.add_argument("--repeats", type=int, default=None, help="default 3; quick 2")
    ap.add_argument("--classifier-steps", type=int, default=200)
    args = ap.parse_args()
    args.n = args.n or (2_000 if args.quick else 10_000)
    args.repeats = args.repeats or (2 if args.quick else 3)
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        data = prepared_digits(Path(tmp))
        ctx = EvalContext(sampler=None, data_dir=data, cache_dir=Path(tmp) / "cache", num_samples=args.n, classifier_steps=args.classifier_steps)  # type: ignore[arg-type]
        model, acc = ctx.classifier
        images = torch.cat([load_tensors(data, s)["image"] for s in ("train", "val", "test")])
        real, fake = jittered(images, args.n, 0), jittered(images, args.n, 1)
        feature = suite.ClassifierFeatures(model)
        torch.manual_seed(0)

        rows = []
        t_feat, t_feat_tm = best_pair(
            lambda: ctx.classifier_features(real),
            lambda: [feature(real[i : i + BATCH]) for i in range(0, len(real), BATCH)],
            args.repeats,
        )
        rows.append(("feature extraction", t_feat, t_feat_tm, args.n / t_feat))

        def ganpipe_fd() -> float:
            return fd(ctx.classifier_features(fake), ctx.classifier_features(real))

        def tm_fd() -> float:
            return float(torchmetrics_run(FrechetInceptionDistance(feature=feature), real, fake))

        t_fd, t_fd_tm = best_pair(ganpipe_fd, tm_fd, args.repeats)
        rows.append(("FD, images -> value", t_fd, t_fd_tm, 2 * args.n / t_fd))

        def ganpipe_kid() -> object:
            return suite.feed(suite.kid_metric(suite.ClassifierFeatures(model), 1000, subsets=100), real, fake)

        def tm_kid() -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torchmetrics_run(KernelInceptionDistance(feature=feature, subsets=100, subset_size=1000), real, fake)

        t_kid, t_kid_tm = best_pair(ganpipe_kid, tm_kid, args.repeats)
        rows.append(("KID 100 x 1000, images -> value", t_kid, t_kid_tm, 2 * args.n / t_kid))

        f_real, f_fake = ctx.classifier_features(real), ctx.classifier_features(fake)
        t_pr = best(lambda: stats.precision_recall(f_real, f_fake, k=3), args.repeats)
        t_dc = best(lambda: stats.density_coverage(f_real, f_fake, k=5), args.repeats)
        rows.append(("precision/recall k=3, features -> value", t_pr, None, 2 * args.n / t_pr))
        rows.append(("density/coverage k=5, features -> value", t_dc, None, 2 * args.n / t_dc))
        check_fd = (ganpipe_fd(), tm_fd())

    t = Table("task", "ganpipe (s)", "torchmetrics (s)", "ratio", "samples/s (ganpipe)", title=f"evaluation speed, {args.n} samples per set, {torch.get_num_threads()} torch threads")
    worst = 0.0
    for name, g, tm, rate in rows:
        ratio = g / tm if tm else None
        if ratio is not None:
            worst = max(worst, ratio)
        style = "" if ratio is None or ratio <= TARGET else "[red]"
        t.add_row(name, f"{g:.3f}", f"{tm:.3f}" if tm else "-", f"{style}{ratio:.2f}" if ratio else "n/a", f"{rate:,.0f}")
    console.print(t)
    console.print(f"classifier test accuracy {acc:.3f}; FD ganpipe {check_fd[0]:.4f} vs torchmetrics {check_fd[1]:.4f}")
    console.print(f"worst ratio {worst:.2f} (target <= {TARGET:.2f}): {'met' if worst <= TARGET else 'NOT met'}")
    result_line("eval_speed", f"{args.n:,} samples: worst ganpipe/torchmetrics time ratio {worst:.2f} (FD and KID from images, feature extraction)",
                f"<= {TARGET:.2f}", worst <= TARGET, value=round(worst, 3))


if __name__ == "__main__":
    main()
