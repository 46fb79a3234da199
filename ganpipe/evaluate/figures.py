"""Everything a person looks at: image grids, training curves, and the evaluation figures.

Pure functions of tensors and plain data (no tracking): `ganpipe.tracking.evaluation` logs what
`make_figures` returns. Figures are built on matplotlib's object API with the Agg canvas (no
pyplot global state, no display), so they are safe in workers and tests; `FIGURES` is the
catalog of evaluation figures, each returning {artifact path: figure | uint8 image | dict}.
"""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ganpipe.catalog import Catalog
from ganpipe.errors import GanpipeError
from ganpipe.evaluate import latent

log = logging.getLogger("ganpipe")

History = dict[str, list[tuple[int, float]]]  # metric key -> [(step, value)]
Artifacts = dict[str, Any]  # artifact path -> matplotlib Figure | HxW(xC) uint8 array | dict (JSON)
FigureFn = Callable[[Any, Any, History], Artifacts]
FIGURES: Catalog[FigureFn] = Catalog("evaluation figure")
TRUNCATIONS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
SWEEP_SAMPLES = 500


# ------------------------------------------------------------------------------ image grids


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1, upscale: int = 1) -> np.ndarray:
    """N x C x H x W in [-1, 1] -> one uint8 H' x W' x C image (C squeezed when 1)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    n, c, h, w = x.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = x[i].transpose(1, 2, 0)
    if upscale > 1:
        grid = grid.repeat(upscale, 0).repeat(upscale, 1)
    return grid[:, :, 0] if c == 1 else grid


def scatter_points(points: torch.Tensor, real: torch.Tensor | None = None, title: str = "samples") -> np.ndarray:
    """N x 2 points (and the real ones, grey, behind them) as an H x W x 3 uint8 scatter plot:
    what a 2-D toy GAN shows where an image GAN shows a grid."""
    fig = Figure(figsize=(4, 4), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if real is not None and len(real):
        r = real.detach().float().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=3, c="0.6", alpha=0.5, linewidths=0, label="real")
    p = points.detach().float().cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=3, c="tab:blue", alpha=0.6, linewidths=0, label="generated")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.set_title(f"{title} (n={len(p)})", fontsize=9)
    if real is not None and len(real):
        ax.legend(fontsize=7, loc="upper right", markerscale=3)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def sample_picture(samples: torch.Tensor, real: torch.Tensor | None = None) -> np.ndarray:
    """Samples as one uint8 picture: a grid of N x C x H x W images, a scatter plot of N x 2
    points (`real` points drawn behind them)."""
    if samples.dim() == 2 and samples.shape[1] == 2:
        return scatter_points(samples, real)
    if samples.dim() == 4:
        return image_grid(samples)
    raise ValueError(f"cannot picture samples of shape {tuple(samples.shape)}: expected N x C x H x W images or N x 2 points")


def save_grid(images: torch.Tensor, path: str, nrow: int | None = None) -> None:
    h = images.shape[-1]
    Image.fromarray(image_grid(images, nrow, upscale=max(1, 64 // h))).save(path)

# ---------------------------------------------------------------------------------- plots


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

# ------------------------------------------------------------------------ evaluation figures


def _grid(images: Any, nrow: int) -> np.ndarray:
    return image_grid(images, nrow=nrow, upscale=max(1, 64 // images.shape[-1]))


@FIGURES.register("interpolation")
def _interpolation(sampler: Any, ctx: Any, history: History) -> Artifacts:
    if not sampler.spec.get("z_dim") or sampler.output_kind != "images":
        return {}
    walk = latent.interpolation_walk(sampler, steps=10, rows=min(8, max(4, sampler.num_classes)), seed=ctx.seed)
    return {"eval/interpolation.png": _grid(walk.flatten(0, 1), nrow=walk.shape[1])}


@FIGURES.register("class_grid")
def _class_grid(sampler: Any, ctx: Any, history: History) -> Artifacts:
    if not sampler.num_classes or sampler.output_kind != "images":
        return {}
    grid = latent.class_grid(sampler, per_class=10, seed=ctx.seed)
    return {"eval/class_grid.png": _grid(grid.flatten(0, 1), nrow=grid.shape[1])}


@FIGURES.register("truncation_sweep")
def _truncation(sampler: Any, ctx: Any, history: History) -> Artifacts:
    if not latent.accepts(sampler, "truncation") or not ctx.manifest.get("num_classes"):
        return {}
    from dataclasses import replace

    small = replace(ctx, num_samples=min(ctx.num_samples, SWEEP_SAMPLES))
    rows = latent.truncation_sweep(sampler, list(TRUNCATIONS), small)
    return {"eval/truncation_sweep.png": truncation_sweep(rows), "eval/truncation_sweep.json": {"rows": rows, "n": small.num_samples}}


def _paired_rows(sampler: Any, held: dict[str, Any], n: int, seed: int) -> list[Any]:
    x, y = held["image"][:n], held["target"][:n]
    return [x, sampler.generate(n, seed=seed, inputs=x), y]  # input, output, target


def _unpaired_rows(sampler: Any, held: dict[str, Any], n: int, seed: int) -> list[Any]:
    x = held["image"][:n]
    out = sampler.generate(n, seed=seed, inputs=x, direction="AtoB")
    return [x, out, sampler.generate(n, seed=seed, inputs=out, direction="BtoA")]  # input, output, cycle


TRIPLETS: dict[str, Callable[..., list[Any]]] = {"paired": _paired_rows, "unpaired": _unpaired_rows}


@FIGURES.register("triplets")
def _triplets(sampler: Any, ctx: Any, history: History) -> Artifacts:
    make = TRIPLETS.get(ctx.manifest.get("kind", ""))
    if make is None:
        return {}
    n = min(8, len(ctx.heldout["image"]))
    cols = make(sampler, ctx.heldout, n, ctx.seed)
    channels = max(c.shape[1] for c in cols)
    cols = [c.expand(-1, channels, -1, -1) if c.shape[1] == 1 else c for c in cols]
    rows = torch.stack(cols, dim=1).flatten(0, 1)  # n x 3 triplets, one per grid row
    return {"eval/triplets.png": _grid(rows, nrow=3)}


@FIGURES.register("losses")
def _losses(sampler: Any, ctx: Any, history: History) -> Artifacts:
    return {"plots/losses.png": curves(history, "training curves")} if history else {}


def make_figures(sampler: Any, ctx: Any, history: History) -> tuple[Artifacts, dict[str, str]]:
    """Every applicable figure: ({artifact path: object}, {figure name: artifact path}).

    Figures are extras: one that fails is logged as a warning and skipped, never failing an
    evaluation that already produced its metrics.
    """
    artifacts: Artifacts = {}
    made: dict[str, str] = {}
    for name in FIGURES:
        try:
            out = FIGURES.get(name)(sampler, ctx, history)
        except Exception as e:
            log.warning("figure %s skipped: %s: %s", name, type(e).__name__, e, exc_info=not isinstance(e, GanpipeError))
            continue
        for path, obj in out.items():
            artifacts[path] = obj
            made[name if path.endswith(".png") else f"{name}.json"] = path
    return artifacts, made


def write_artifact(root: Path, path: str, obj: Any) -> None:
    """One figure, image or JSON record under `root` (for a single artifact upload)."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, dict):
        target.write_text(json.dumps(obj, indent=2))
    elif isinstance(obj, np.ndarray):
        Image.fromarray(obj).save(target)
    else:
        target.write_bytes(to_png(obj))
