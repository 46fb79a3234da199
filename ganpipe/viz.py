"""Image grids for sample logging and `ganpipe generate` (torchvision-free)."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image


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


def save_grid(images: torch.Tensor, path: str, nrow: int | None = None) -> None:
    h = images.shape[-1]
    Image.fromarray(image_grid(images, nrow, upscale=max(1, 64 // h))).save(path)
