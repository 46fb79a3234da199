"""Image-to-image translation data: built-in `colorize` (paired) and `textures` (unpaired), and
importers for the folder layouts of the Pix2Pix (`aligned:PATH`) and CycleGAN
(`unaligned:PATH`) data sets.

Paired examples hold `image` (input A) and `target` (B) of the same shape; unpaired examples
hold `image` (domain A) and `image_b` (domain B) of equal length, where a row pairs an
arbitrary A with an arbitrary B. Built-in sets materialise a few photos that scikit-image
ships (no download) under the raw data root, so DVC versions them; preparation cuts seeded
random crops from them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganpipe.data.images import MAX_PIXELS, list_images, load_images, native_channels, to_mode, to_square
from ganpipe.data.sources import IMPORTERS, SOURCES, Examples, Source
from ganpipe.errors import DataError

COLORIZE_CROPS = 4000
TEXTURE_CROPS = 2000  # per domain
MAX_RAW_SIDE = 512  # materialised photos are shrunk to this longest side (crops are far smaller)
READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


# -- reading whole images ------------------------------------------------------------------

def open_image(path: Path, channels: int) -> Image.Image:
    """A full-size image in mode L (channels 1) or RGB, transparency composited on white."""
    with Image.open(path) as im:
        if im.width * im.height > MAX_PIXELS:
            raise ValueError(f"{im.width}x{im.height} pixels is over the {MAX_PIXELS} limit")
        im.load()
        return to_mode(im, channels)


def load_each(paths: list[Path], load: Callable[[Path], Any]) -> list[Any]:
    """`load` applied to every path; one DataError lists every file that failed."""
    out, bad = [], []
    for p in paths:
        try:
            out.append(load(p))
        except READ_ERRORS as e:
            bad.append(f"{p} ({type(e).__name__}: {str(e)[:80]})")
    if bad:
        shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise DataError(
            f"{len(bad)} unreadable or corrupt image file(s): {shown}",
            hint="remove or replace these files, then prepare again",
        )
    return out


def as_array(im: Image.Image) -> np.ndarray:
    arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr  # H x W x C


def random_crops(
    images: list[Image.Image], n: int, size: int, rng: np.random.Generator, scale: tuple[float, float]
) -> np.ndarray:
    """n square crops (side a `scale` fraction of the image's short side, at least `size`),
    at random positions, randomly mirrored, resized to size: [n, size, size, C] uint8."""
    out = []
    for _ in range(n):
        im = images[int(rng.integers(len(images)))]
        short = min(im.size)
        lo = min(max(size, int(scale[0] * short)), short)
        side = int(rng.integers(lo, max(lo, int(scale[1] * short)) + 1))
        x, y = int(rng.integers(im.width - side + 1)), int(rng.integers(im.height - side + 1))
        crop = im.crop((x, y, x + side, y + side))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(as_array(to_square(crop, size)))
    return np.stack(out)


def _replace_dir(tmp: Path, root: Path) -> Path:
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root


def _fresh(root: Path) -> Path:
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _raw_folder(name: str, path: Path | None, cfg: Any) -> Path:
    folder = path if path is not None else Path(cfg.raw_root) / name
    if not folder.exists():
        raise DataError(f"raw data for {name!r} is missing at {folder}", hint=f"run `ganpipe data fetch {name}` (or `dvc pull`)")
    return folder


# -- colorize: grayscale -> colour crops of scikit-image's photos ------------------------------

def _colorize_photos() -> dict[str, np.ndarray]:
    """Colour photos bundled with scikit-image (all load offline), H x W x 3 uint8."""
    from skimage import data

    return {
        "astronaut": data.astronaut(),
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
        "rocket": data.rocket(),
        "motorcycle": data.stereo_motorcycle()[0],
        "hubble_deep_field": data.hubble_deep_field(),
        "immunohistochemistry": data.immunohistochemistry(),
        "retina": data.retina(),
    }


def _materialize_colorize(raw_root: Path) -> Path:
    root = raw_root / "colorize"
    tmp = _fresh(root)
    for name, arr in _colorize_photos().items():
        im = Image.fromarray(arr).convert("RGB")
        if max(im.size) > MAX_RAW_SIDE:
            f = MAX_RAW_SIDE / max(im.size)
            im = im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.LANCZOS)
        im.save(tmp / f"{name}.png", optimize=False)
    return _replace_dir(tmp, root)


def _read_colorize(path: Path | None, cfg: Any) -> Examples:
    """COLORIZE_CROPS seeded random crops; input = luma (PIL "L", ITU-R 601) replicated to 3
    channels so input and target share a shape (a grayscale image is a valid RGB image),
    target = the RGB crop. Crops of all photos land in every split (prepare splits rows at
    random), so held-out metrics measure unseen crops, not unseen photos."""
    if cfg.channels == 1:
        raise DataError("colorize targets are colour images", hint="leave data.channels unset (or 3)")
    folder = _raw_folder("colorize", path, cfg)
    files = list_images(folder)
    if not files:
        raise DataError(f"no photos in {folder}", hint="run `ganpipe data fetch colorize`")
    photos = load_each(files, lambda p: open_image(p, 3))
    rng = np.random.default_rng(cfg.seed)
    target = random_crops(photos, COLORIZE_CROPS, cfg.image_size, rng, scale=(1 / 8, 1 / 2))  # [N, S, S, 3]
    gray = np.stack([as_array(Image.fromarray(t).convert("L")) for t in target])  # [N, S, S, 1]
    return Examples(
        "paired",
        {"image": np.repeat(gray, 3, axis=3), "target": target},
        extra={"photos": [p.stem for p in files], "crops": COLORIZE_CROPS, "input": "luma replicated to 3 channels"},
    )


SOURCES.add(
    "colorize",
    Source(
        "colorize",
        "paired",
        "grayscale -> colour: 4,000 random crops of 8 photos bundled with scikit-image",
        _read_colorize,
        _materialize_colorize,
        32,
    ),
)


# -- unaligned folders (CycleGAN layout) and the built-in textures -----------------------------

def domain_files(root: Path, domain: str) -> list[Path]:
    """Images of one domain: root/train<D> plus root/test<D> when present (merged into one pool)."""
    train = root / f"train{domain}"
    if not train.is_dir():
        raise DataError(
            f"missing folder {train}",
            hint="unaligned: expects PATH/trainA and PATH/trainB (and optionally testA/testB) folders of images",
        )
    files = list_images(train)
    if (root / f"test{domain}").is_dir():
        files += list_images(root / f"test{domain}")
    if not files:
        raise DataError(f"no images for domain {domain} in {train}", hint=f"add PNG/JPEG files to {train}")
    return files


def _equal_length(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Tile the smaller domain (in shuffled passes) to the larger one's length."""
    n = max(len(a), len(b))

    def fill(x: np.ndarray) -> np.ndarray:
        passes = -(-n // len(x))
        return x[np.concatenate([rng.permutation(len(x)) for _ in range(passes)])[:n]]

    return fill(a), fill(b)


def _check_root(path: Path | None, prefix: str) -> Path:
    if path is None or not path.exists():
        raise DataError(f"folder not found: {path}", hint=f"check the path after '{prefix}:'")
    if not path.is_dir():
        raise DataError(f"not a folder: {path}", hint=f"{prefix}: expects a folder")
    return path


def read_unaligned(path: Path | None, cfg: Any) -> Examples:
    """One image per file, resized to image_size; the smaller domain is repeated (shuffled) to
    the larger one's size, so its repeats can fall into several splits."""
    root = _check_root(path, "unaligned")
    files_a, files_b = domain_files(root, "A"), domain_files(root, "B")
    channels = cfg.channels or max(native_channels(files_a), native_channels(files_b))
    a = load_images(files_a, cfg.image_size, channels)
    b = load_images(files_b, cfg.image_size, channels)
    a, b = _equal_length(a, b, np.random.default_rng(cfg.seed))
    return Examples("unpaired", {"image": a, "image_b": b}, extra={"files_a": len(files_a), "files_b": len(files_b)})


IMPORTERS.add(
    "unaligned",
    Source("unaligned", "unpaired", "CycleGAN layout: PATH/trainA and PATH/trainB (+ testA/testB) images", read_unaligned),
)


def _materialize_textures(raw_root: Path) -> Path:
    from skimage import data

    root = raw_root / "textures"
    tmp = _fresh(root)
    for domain, name, arr in (("A", "grass", data.grass()), ("B", "gravel", data.gravel())):
        (tmp / f"train{domain}").mkdir()
        Image.fromarray(arr).save(tmp / f"train{domain}" / f"{name}.png", optimize=False)  # 512 x 512 gray
    return _replace_dir(tmp, root)


def _read_textures(path: Path | None, cfg: Any) -> Examples:
    """TEXTURE_CROPS seeded random crops per domain of the unaligned folder: A = grass, B = gravel."""
    root = _raw_folder("textures", path, cfg)
    files_a, files_b = domain_files(root, "A"), domain_files(root, "B")
    channels = cfg.channels or max(native_channels(files_a), native_channels(files_b))
    rng = np.random.default_rng(cfg.seed)
    crops = {}
    for key, files in (("image", files_a), ("image_b", files_b)):
        images = load_each(files, lambda p: open_image(p, channels))
        crops[key] = random_crops(images, TEXTURE_CROPS, cfg.image_size, rng, scale=(1 / 8, 1 / 4))
    return Examples("unpaired", crops, extra={"domains": {"A": "grass", "B": "gravel"}, "crops": TEXTURE_CROPS})


SOURCES.add(
    "textures",
    Source(
        "textures",
        "unpaired",
        "grass -> gravel: 2,000 random crops per domain of two scikit-image textures",
        _read_textures,
        _materialize_textures,
        32,
    ),
)


# -- aligned folders (Pix2Pix layout) ---------------------------------------------------------

def _load_halves(path: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    im = open_image(path, channels)
    half = im.width // 2
    if half < 1:
        raise ValueError(f"{im.width}px wide: too narrow to split into A|B halves")
    a, b = im.crop((0, 0, half, im.height)), im.crop((half, 0, 2 * half, im.height))
    return as_array(to_square(a, size)), as_array(to_square(b, size))


def read_aligned(path: Path | None, cfg: Any) -> Examples:
    """Each file holds A|B side by side (left half input, right half target), as in the Pix2Pix
    data sets; sub-folders (train/val/test) are merged and re-split by prepare."""
    root = _check_root(path, "aligned")
    files = list_images(root)
    if not files:
        raise DataError(f"no images found in {root}", hint="aligned: expects images holding input|target side by side")
    channels = cfg.channels or native_channels(files)
    pairs = load_each(files, lambda p: _load_halves(p, cfg.image_size, channels))
    a = np.stack([p[0] for p in pairs])  # [N, S, S, C]
    b = np.stack([p[1] for p in pairs])
    return Examples("paired", {"image": a, "target": b}, extra={"files": len(files)})


IMPORTERS.add("aligned", Source("aligned", "paired", "Pix2Pix layout: images holding input|target side by side", read_aligned))
