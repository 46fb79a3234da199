"""`ganpipe generate`: sample a registered model or a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ganpipe.cli.common import app, console, err, handle_errors, load_project
from ganpipe.errors import GanpipeError

def _parse_labels(labels: Optional[str], n: int, num_classes: int) -> Any:
    import torch

    if labels is None:
        return None
    if num_classes <= 0:
        raise GanpipeError("--labels given but this model is not class-conditional")
    try:
        ids = [int(x) for x in labels.split(",") if x.strip() != ""]
    except ValueError:
        raise GanpipeError(f"--labels must be comma-separated class ids, got {labels!r}") from None
    bad = [i for i in ids if not 0 <= i < num_classes]
    if bad or not ids:
        raise GanpipeError(f"labels {bad or ids} out of range 0..{num_classes - 1}")
    return torch.tensor([ids[i % len(ids)] for i in range(n)])


@app.command()
@handle_errors
def generate(
    model_uri: str = typer.Argument(..., help="e.g. models:/ganpipe-dcgan-digits@champion, or a checkpoint folder."),
    n: int = typer.Option(64, "-n", help="Number of samples."),
    out: Path = typer.Option(Path("samples.png"), help="PNG grid, or .npy for the raw array."),
    seed: int = typer.Option(0),
    labels: Optional[str] = typer.Option(None, help="Class ids for conditional models, e.g. 0,1,2 (cycled)."),
    truncation: Optional[float] = typer.Option(None, help="Truncation threshold for BigGAN-style models."),
    input_: Optional[Path] = typer.Option(None, "--input", help="Image or folder to translate (pix2pix, cyclegan)."),
    direction: Optional[str] = typer.Option(None, help="AtoB or BtoA (cyclegan)."),
) -> None:
    """Sample from a registered model (or a checkpoint) to a PNG grid or a .npy array."""
    import numpy as np

    from ganpipe.tracking.pyfunc import MAX_SAMPLES

    if not 1 <= n <= MAX_SAMPLES:
        raise GanpipeError(f"-n {n} is out of range 1..{MAX_SAMPLES}")
    sampler = _load_sampler(model_uri)
    kw: dict[str, Any] = {}
    lab = _parse_labels(labels, n, sampler.num_classes)
    if lab is not None:
        kw["labels"] = lab
    if truncation is not None:
        if truncation <= 0:
            raise GanpipeError("--truncation must be > 0")
        kw["truncation"] = truncation
    if direction is not None:
        if direction not in ("AtoB", "BtoA"):
            raise GanpipeError(f"--direction must be AtoB or BtoA, got {direction!r}")
        kw["direction"] = direction
    if input_ is not None:
        kw["inputs"] = _load_inputs(input_, sampler.spec)
        n = len(kw["inputs"])
    from ganpipe.evaluate.progress import progress

    try:
        with progress(f"generating {n} samples", console=err):
            x = sampler.generate(n, seed=seed, **kw)
    except (ValueError, TypeError) as e:
        raise GanpipeError(f"cannot generate with this model: {e}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, x.numpy())
    else:
        if sampler.output_kind != "images":
            raise GanpipeError("this model generates points, not images", hint="use --out samples.npy")
        from ganpipe.evaluate.figures import save_grid

        save_grid(x, str(out))
    console.print(f"wrote {n} samples to {out}")


def _load_inputs(path: Path, spec: dict[str, Any]) -> Any:
    """An image or a folder of images as a tensor shaped for a translator's input."""
    from ganpipe.data.images import list_images, load_images
    from ganpipe.data.loading import images_to_tensor

    if not path.exists():
        raise GanpipeError(f"--input not found: {path}")
    files = list_images(path) if path.is_dir() else [path]
    if not files:
        raise GanpipeError(f"no images in {path}")
    channels = int(spec.get("in_channels", spec.get("channels", 3)))
    return images_to_tensor(load_images(files, int(spec["image_size"]), channels))


def _load_sampler(model_uri: str) -> Any:
    p = Path(model_uri)
    if p.is_dir():
        from ganpipe.gans.base import sampler_from_export
        from ganpipe.train.checkpoint import load_export

        return sampler_from_export(*load_export(p))
    from ganpipe.tracking.pyfunc import load_sampler

    return load_sampler(load_project().store, model_uri)

