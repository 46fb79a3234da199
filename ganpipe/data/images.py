"""Reading users' image files robustly: every bad file is named, none is skipped silently."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganpipe.errors import DataError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_PIXELS = 64_000_000  # refuse decompression bombs with a clear error
GRAY_MODES = ("L", "1", "I", "I;16", "I;16B", "I;16L", "LA", "F")
READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def image_names(folder: Path) -> list[str]:
    """Image files under `folder` as POSIX paths relative to it (recursive, sorted, hidden
    entries and symlink loops skipped). Plain strings: at 100k files, building a `Path` per
    file cost the planner more than listing the folder."""
    out: list[str] = []
    top = os.fspath(folder)
    for root, dirs, files in os.walk(top, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(root, top)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        out += [prefix + f for f in sorted(files) if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTS]
    return out


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, sorted, symlink loops not followed)."""
    return [folder / name for name in image_names(folder)]


def to_square(img: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square, then resize (Lanczos when shrinking, bicubic when enlarging)."""
    w, h = img.size
    s = min(w, h)
    if w != h:
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if s != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS if s > size else Image.Resampling.BICUBIC)
    return img


def to_mode(im: Image.Image, channels: int) -> Image.Image:
    """An opened image in mode L (channels 1) or RGB, from any PIL mode: transparency is
    composited on white, high bit depths are scaled (never clipped) to 0..255, CIELAB goes
    through a colour transform (PIL has no direct LAB -> RGB conversion)."""
    if im.mode in ("RGBA", "LA", "P", "PA", "RGBa"):
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))
    elif im.mode.startswith("I;16") or im.mode in ("I", "F"):
        im = Image.fromarray(scale_to_uint8(np.asarray(im), im.mode))
    elif im.mode == "LAB":
        from PIL import ImageCms

        lab_to_srgb = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
        im = ImageCms.applyTransform(im, lab_to_srgb)
    return im.convert("L" if channels == 1 else "RGB")


def scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """A single-channel high-depth image as uint8, scaled by its type's range so that every
    image of a data set keeps its brightness relative to the others (PIL's own conversion
    clips 16-bit values above 255 to white). 16-bit: v * 255 / 65535. 32-bit integers that
    fit 8 or 16 bits are scaled as such; floats in [0, 1] by 255; anything else (negative or
    wider values, whose range the file does not tell) is stretched from its min to its max."""
    a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and lo >= 0 and 255 < hi <= 65535):
        scaled = a * (255.0 / 65535.0)
    elif mode == "I" and lo >= 0 and hi <= 255:
        scaled = a
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = a * 255.0
    else:
        scaled = 255 * (a - lo) / (hi - lo if hi - lo > 1e-12 else 1.0)
    return np.rint(scaled).clip(0, 255).astype(np.uint8)


def load_image(path: "Path | IO[bytes]", size: int, channels: int) -> np.ndarray:
    """One image (a file, or a file-like of encoded bytes) as uint8 H x W x C, converted from
    any PIL mode (L, RGB, RGBA, P, I;16, F, LAB, ...)."""
    with Image.open(path) as im:
        if im.width * im.height > MAX_PIXELS:
            raise ValueError(f"{im.width}x{im.height} pixels is over the {MAX_PIXELS} limit")
        im.load()
        im = to_square(to_mode(im, channels), size)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def native_channels(paths: "Iterable[Path]") -> int:
    """1 if every image is grayscale, else 3."""
    for p in paths:
        try:
            with Image.open(p) as im:
                if im.mode not in GRAY_MODES:
                    return 3
        except Exception:
            continue
    return 1


def load_images(paths: list[Path], size: int, channels: int) -> np.ndarray:
    """All images as N x H x W x C uint8; a DataError lists every unreadable file."""
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    bad: list[str] = []
    for i, p in enumerate(paths):
        try:
            out[i] = load_image(p, size, channels)
        except READ_ERRORS as e:
            bad.append(f"{p} ({type(e).__name__}: {str(e)[:80]})")
    if bad:
        shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise DataError(
            f"{len(bad)} unreadable or corrupt image file(s): {shown}",
            hint="remove or replace these files, then prepare again",
        )
    return out
