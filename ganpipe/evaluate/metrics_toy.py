"""Mode metrics for 2-D Gaussian-mixture toys (`ring8`, `grid25`).

The mixture's centres and std come from the prepared manifest. The reference is the same
metric on the held-out real points: what a perfect generator would get (all modes, and
1 - exp(-4.5) = 98.9% of samples, the mass of a 2-D Gaussian within 3 std).
"""

from __future__ import annotations

from ganpipe.errors import ConfigError
from ganpipe.evaluate import stats
from ganpipe.evaluate.metrics import METRICS, EvalContext, MetricResult


@METRICS.register("mixture")
def mixture(ctx: EvalContext) -> MetricResult:
    """Modes covered and share of samples within 3 std of a centre (VEEGAN's protocol)."""
    extra = ctx.manifest.get("extra", {})
    if ctx.manifest.get("kind") != "points" or "centers" not in extra:
        raise ConfigError("metric 'mixture' needs a Gaussian-mixture points data set", hint="use data.source=ring8 or grid25")
    centers, std = extra["centers"], float(extra["std"])
    fake = ctx.fake  # [N, 2]
    got = stats.mixture_quality(fake, centers, std)
    real = stats.mixture_quality(ctx.heldout["x"], centers, std)
    return MetricResult(
        {
            "modes_covered": float(got["modes_covered"]),
            "high_quality_share": got["high_quality_share"],
            "modes_total": float(len(centers)),
            "modes_covered_real": float(real["modes_covered"]),
            "high_quality_share_real": real["high_quality_share"],
        },
        {"n_fake": len(fake), "n_real": len(ctx.heldout["x"]), "per_mode_counts": got["per_mode_counts"], "std": std},
    )
