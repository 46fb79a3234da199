"""Evaluation figures as PNG bytes: training curves and the truncation sweep.

Figures are built on matplotlib's object API with the Agg canvas (no pyplot global state, no
display), so they are safe in workers and tests. Inputs are plain data, e.g. MLflow metric
histories as {key: [(step, value), ...]}; the tracking layer fetches them.
"""

from __future__ import annotations

import io
import math
from typing import Iterable

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

History = dict[str, list[tuple[int, float]]]


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _group(key: str) -> str:
    """Curves sharing a panel: loss_d / loss_g -> 'loss', eval.fcd / eval.fcd_floor -> 'eval.fcd'."""
    if key.endswith(("_floor", "_real", "_std")):
        return key.rsplit("_", 1)[0]
    return key.split("_", 1)[0] if key.startswith("loss") else key


def curves(history: History, title: str = "training curves", cols: int = 3) -> Figure:
    """One panel per metric group (losses together, a metric with its floor), value vs step."""
    groups: dict[str, list[str]] = {}
    for key in sorted(history):
        if history[key]:
            groups.setdefault(_group(key), []).append(key)
    n = max(1, len(groups))
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 2.8 * rows), layout="constrained")
    fig.suptitle(title)
    if not groups:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no metric history", ha="center", va="center")
        ax.set_axis_off()
        return fig
    for i, (group, keys) in enumerate(groups.items(), start=1):
        ax = fig.add_subplot(rows, cols, i)
        for key in keys:
            points = sorted(history[key])
            style = "--" if key.endswith(("_floor", "_real")) else "-"
            ax.plot([s for s, _ in points], [v for _, v in points], style, label=key, marker="." if len(points) < 30 else None)
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    return fig


def truncation_sweep(rows: Iterable[dict[str, float]], quality: str = "fcd", diversity: str = "diversity") -> Figure:
    """Quality (left axis) and diversity (right axis) against the truncation threshold."""
    rows = sorted(rows, key=lambda r: r["truncation"])
    t = [r["truncation"] for r in rows]
    fig = Figure(figsize=(5.5, 3.5), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(t, [r[quality] for r in rows], "o-", color="tab:blue", label=quality)
    ax.set_xlabel("truncation threshold (smaller = stronger truncation)")
    ax.set_ylabel(quality, color="tab:blue")
    ax.grid(alpha=0.3)
    right = ax.twinx()
    right.plot(t, [r[diversity] for r in rows], "s--", color="tab:orange", label=diversity)
    right.set_ylabel(diversity, color="tab:orange")
    fig.suptitle("truncation trick: fidelity vs variety")
    return fig
