"""Metric names `eval.metrics` may list (the metrics themselves: ganpipe.evaluate)."""

from __future__ import annotations

from ganpipe.catalog import Catalog

METRIC_NAMES: Catalog[str] = Catalog("metric")

for _name in ("fcd", "swd", "fid", "kid", "is", "pr", "memorisation", "kid_classifier", "cond_acc", "cis", "mixture", "paired", "cyclegan", "stacked_modes"):
    METRIC_NAMES.add(_name, _name)
