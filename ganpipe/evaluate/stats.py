"""Pure numerical GAN metrics on precomputed features (N x D) or image batches (N x C x H x W).

Inputs may be numpy arrays or torch tensors; results are plain Python floats, ints, lists and
dicts, so they can be logged as they are. Nothing here extracts features or downloads weights:
callers pass features from whatever extractor they use (Inception, a small classifier, raw
pixels). References for each metric are given in the function docstrings.

k-nearest-neighbour metrics compute distances with ``torch.cdist`` a block of query rows at a
time, so 10k x 10k sets need a few hundred MB rather than the full distance matrix at once.
Distances are computed in float64 when the input is float64 and in float32 otherwise.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

# scipy.linalg and torchmetrics are imported where used: importing them here cost 1.6 s of every
# CLI start on 2 cores (config validation imports the metric registry).

ArrayLike = Any  # numpy array, torch tensor, or anything np.asarray accepts

# Elements of one block of the distance matrix (16M: 64 MB in float32, 128 MB in float64).
_BLOCK_ELEMENTS = 1 << 24


# --------------------------------------------------------------------------- input handling


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_finite(x: np.ndarray | torch.Tensor, name: str) -> None:
    finite = bool(torch.isfinite(x).all()) if isinstance(x, torch.Tensor) else bool(np.isfinite(x).all())
    if not finite:
        raise ValueError(f"{name} contains NaN or inf values")


def _features_np(x: ArrayLike, name: str, min_rows: int = 1) -> np.ndarray:
    arr = _to_numpy(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N x D) feature array, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}")
    _check_finite(arr, name)
    return arr


def _features_torch(x: ArrayLike, name: str, min_rows: int = 1) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N x D) feature array, got shape {tuple(t.shape)}")
    if t.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {t.shape[0]}")
    t = t.to(torch.float64) if t.dtype == torch.float64 else t.to(torch.float32)
    _check_finite(t, name)
    return t


def _feature_pair(a: ArrayLike, b: ArrayLike, names: tuple[str, str], min_rows: int = 1):
    ta = _features_torch(a, names[0], min_rows)
    tb = _features_torch(b, names[1], min_rows)
    if ta.shape[1] != tb.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} have different feature sizes ({ta.shape[1]} vs {tb.shape[1]})"
        )
    dtype = torch.promote_types(ta.dtype, tb.dtype)
    return ta.to(dtype), tb.to(device=ta.device, dtype=dtype)


def _images(x: ArrayLike, name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 4:
        raise ValueError(f"{name} must be an N x C x H x W image batch, got shape {tuple(t.shape)}")
    t = t.to(torch.float64) if t.dtype == torch.float64 else t.to(torch.float32)
    _check_finite(t, name)
    return t


def _image_pair(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _images(pred, "pred"), _images(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}")
    dtype = torch.promote_types(p.dtype, t.dtype)
    return p.to(dtype), t.to(device=p.device, dtype=dtype)


# ------------------------------------------------------------------------- Fréchet distance


def frechet_distance_from_stats(
    mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, FID).

    ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) in float64, as in the reference FID code:
    a singular product is retried with eps on the diagonal, tiny imaginary parts are dropped.
    """
    mu1, mu2 = np.atleast_1d(_to_numpy(mu1)), np.atleast_1d(_to_numpy(mu2))
    sigma1, sigma2 = np.atleast_2d(_to_numpy(sigma1)), np.atleast_2d(_to_numpy(sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            "means must be vectors and covariances square matrices of the same size, got "
            f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    for value, name in ((mu1, "mu1"), (mu2, "mu2"), (sigma1, "sigma1"), (sigma2, "sigma2")):
        _check_finite(value, name)

    import scipy.linalg

    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        diag = np.diagonal(covmean)
        if np.max(np.abs(diag.imag)) > 1e-3 * max(1.0, float(np.max(np.abs(diag.real)))):
            raise ValueError(
                "matrix square root of sigma1 @ sigma2 has a large imaginary part; the covariances "
                "are probably ill-conditioned (too few samples for the feature size?)"
            )
        covmean = covmean.real
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return max(fd, 0.0)  # the true value is >= 0; clamp rounding noise around 0


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """FID-style Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017).

    Mean and unbiased covariance of each set in float64, then :func:`frechet_distance_from_stats`.
    """
    a = _features_np(feats_a, "feats_a", min_rows=2)
    b = _features_np(feats_b, "feats_b", min_rows=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(
        a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False)
    )


# ------------------------------------------------------------------ kernel inception distance


def _unbiased_poly_mmd2(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef: float) -> float:
    m = x.shape[0]
    k_xx = (gamma * (x @ x.T) + coef) ** degree
    k_yy = (gamma * (y @ y.T) + coef) ** degree
    k_xy = (gamma * (x @ y.T) + coef) ** degree
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    feats_a: ArrayLike,
    feats_b: ArrayLike,
    subsets: int = 10,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with kernel (gamma x.y + coef)^degree, gamma=1/D.

    Averaged over `subsets` random subsets (without replacement) of min(subset_size, N_a, N_b)
    samples from each set; returns (mean, std) with the population std, as the reference code.
    """
    a = _features_np(feats_a, "feats_a", min_rows=2)
    b = _features_np(feats_b, "feats_b", min_rows=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    g = 1.0 / a.shape[1] if gamma is None else float(gamma)
    rng = np.random.default_rng(seed)
    scores = np.array(
        [
            _unbiased_poly_mmd2(
                a[rng.choice(a.shape[0], m, replace=False)],
                b[rng.choice(b.shape[0], m, replace=False)],
                degree,
                g,
                coef,
            )
            for _ in range(subsets)
        ]
    )
    return float(scores.mean()), float(scores.std())


# ------------------------------------------------------------------- k-NN based metrics


def _distance_blocks(query: torch.Tensor, reference: torch.Tensor, chunk_size: int | None):
    """Yield (start, stop, cdist(query[start:stop], reference)) over blocks of query rows."""
    n_ref = max(reference.shape[0], 1)
    rows = chunk_size if chunk_size is not None else max(1, _BLOCK_ELEMENTS // n_ref)
    if rows < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, query.shape[0], rows):
        stop = min(start + rows, query.shape[0])
        yield start, stop, torch.cdist(query[start:stop], reference)


def _knn(
    query: torch.Tensor,
    reference: torch.Tensor,
    k: int,
    self_index: np.ndarray | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest reference rows of each query row; reference row self_index[i] is skipped for query i.

    Candidates come from the fast matrix-product distances; their distances are then recomputed
    directly in float64, so an exact duplicate gets exactly 0.
    """
    available = reference.shape[0] - (1 if self_index is not None else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k must be between 1 and {available} (reference size), got {k}")
    distances = np.empty((query.shape[0], k), dtype=np.float64)
    indices = np.empty((query.shape[0], k), dtype=np.int64)
    for start, stop, block in _distance_blocks(query, reference, chunk_size):
        if self_index is not None:
            rows = torch.arange(stop - start, device=block.device)
            cols = torch.as_tensor(self_index[start:stop], device=block.device)
            block[rows, cols] = math.inf
        idx = torch.topk(block, k, dim=1, largest=False, sorted=True).indices
        q = query[start:stop].to(torch.float64)
        exact = torch.stack(
            [torch.linalg.vector_norm(q - reference[idx[:, j]].to(torch.float64), dim=1) for j in range(k)],
            dim=1,
        )
        exact, order = torch.sort(exact, dim=1, stable=True)
        distances[start:stop] = exact.cpu().numpy()
        indices[start:stop] = torch.gather(idx, 1, order).cpu().numpy()
    return distances, indices


def nearest_neighbours(
    query: ArrayLike,
    reference: ArrayLike,
    k: int = 1,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean k nearest neighbours, exact, computed in blocks of query rows.

    Returns (distances, indices), each N_query x k, nearest first. With exclude_self, query and
    reference are the same set and row i is not its own neighbour (duplicates still count).
    """
    q, r = _feature_pair(query, reference, ("query", "reference"))
    self_index = None
    if exclude_self:
        if q.shape != r.shape:
            raise ValueError("exclude_self needs query and reference to be the same set")
        self_index = np.arange(q.shape[0])
    return _knn(q, r, k, self_index, chunk_size)


def _knn_radii(feats: torch.Tensor, k: int, chunk_size: int | None) -> torch.Tensor:
    """Distance from each sample to its k-th nearest other sample of the same set."""
    if feats.shape[0] <= k:
        raise ValueError(f"need more than k={k} samples per set, got {feats.shape[0]}")
    distances, _ = _knn(feats, feats, k, np.arange(feats.shape[0]), chunk_size)
    return torch.from_numpy(distances[:, -1]).to(device=feats.device, dtype=feats.dtype)


def _ball_hits(
    points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk_size: int | None
) -> np.ndarray:
    """For each point, how many balls B(centre_i, radius_i) contain it (closed balls)."""
    counts = np.empty(points.shape[0], dtype=np.int64)
    for start, stop, block in _distance_blocks(points, centres, chunk_size):
        counts[start:stop] = (block <= radii[None, :]).sum(dim=1).cpu().numpy()
    return counts


def precision_recall(
    real: ArrayLike, fake: ArrayLike, k: int = 3, chunk_size: int | None = None
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifold estimates.

    precision: share of fake samples inside some real k-NN ball; recall: share of real samples
    inside some fake k-NN ball.
    """
    r, f = _feature_pair(real, fake, ("real", "fake"))
    real_radii = _knn_radii(r, k, chunk_size)
    fake_radii = _knn_radii(f, k, chunk_size)
    precision = float((_ball_hits(f, r, real_radii, chunk_size) > 0).mean())
    recall = float((_ball_hits(r, f, fake_radii, chunk_size) > 0).mean())
    return {"precision": precision, "recall": recall}


def density_coverage(
    real: ArrayLike, fake: ArrayLike, k: int = 5, chunk_size: int | None = None
) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020), built on real k-NN balls only.

    density: mean number of real balls containing a fake sample, divided by k (about 1 when the
    distributions match, unbounded above); coverage: share of real balls containing a fake sample.
    """
    r, f = _feature_pair(real, fake, ("real", "fake"))
    real_radii = _knn_radii(r, k, chunk_size)
    density = float(_ball_hits(f, r, real_radii, chunk_size).sum() / (k * f.shape[0]))
    nearest_fake, _ = _knn(r, f, 1, chunk_size=chunk_size)
    coverage = float((nearest_fake[:, 0] <= real_radii.cpu().numpy()).mean())
    return {"density": density, "coverage": coverage}


# --------------------------------------------------------------- sliced Wasserstein distance


def _w1_sorted(sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """Exact 1-D W1 per column between empirical distributions given as column-sorted samples."""
    na, nb = sa.shape[0], sb.shape[0]
    if na == nb:
        return np.abs(sa - sb).mean(axis=0)
    # Quantile functions are step functions; integrate |Fa^-1 - Fb^-1| over the merged steps.
    breaks = np.union1d(np.arange(1, na + 1) / na, np.arange(1, nb + 1) / nb)
    widths = np.diff(breaks, prepend=0.0)
    mids = breaks - widths / 2
    ia = np.minimum((mids * na).astype(np.int64), na - 1)
    ib = np.minimum((mids * nb).astype(np.int64), nb - 1)
    return (widths[:, None] * np.abs(sa[ia] - sb[ib])).sum(axis=0)


def sliced_wasserstein(a: ArrayLike, b: ArrayLike, n_projections: int = 128, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance (Rabin et al. 2011; SWD of Karras et al. 2018).

    Samples are flattened to vectors, projected on n_projections random unit directions and the
    exact 1-D W1 between the projections is averaged (no x1e3 scaling as in the ProGAN tables).
    """
    xa, xb = _to_numpy(a), _to_numpy(b)
    xa = xa[:, None] if xa.ndim == 1 else xa.reshape(xa.shape[0], -1)
    xb = xb[:, None] if xb.ndim == 1 else xb.reshape(xb.shape[0], -1)
    if xa.shape[0] < 1 or xb.shape[0] < 1:
        raise ValueError("both sets need at least one sample")
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"flattened sizes differ: {xa.shape[1]} vs {xb.shape[1]}")
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections}")
    _check_finite(xa, "a")
    _check_finite(xb, "b")
    directions = np.random.default_rng(seed).standard_normal((xa.shape[1], n_projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    pa = np.sort(xa @ directions, axis=0)
    pb = np.sort(xb @ directions, axis=0)
    return float(_w1_sorted(pa, pb).mean())


_BINOMIAL_5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    kernel = torch.outer(_BINOMIAL_5, _BINOMIAL_5).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def laplacian_pyramid(images: torch.Tensor, n_levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid with the 5-tap binomial filter (Burt & Adelson 1983), finest level first.

    The last entry is the Gaussian residual at the coarsest resolution, as in the ProGAN SWD code.
    """
    levels = [images]
    for _ in range(1, n_levels):
        coarse = _blur(levels[-1])[:, :, ::2, ::2]
        h, w = levels[-1].shape[-2:]
        up = torch.zeros(*coarse.shape[:2], 2 * coarse.shape[2], 2 * coarse.shape[3]).to(coarse)
        up[:, :, ::2, ::2] = 4.0 * coarse
        levels[-1] = levels[-1] - _blur(up)[:, :, :h, :w]
        levels.append(coarse)
    return levels


def _patch_descriptors(level: torch.Tensor, patch_size: int, per_image: int, rng) -> torch.Tensor:
    """per_image random patch_size^2 patches per image, as (N * per_image) x C x p x p."""
    n, _, h, w = level.shape
    ys = torch.from_numpy(rng.integers(0, h - patch_size + 1, size=(n, per_image)))
    xs = torch.from_numpy(rng.integers(0, w - patch_size + 1, size=(n, per_image)))
    offsets = torch.arange(patch_size)
    rows = (ys[:, :, None] + offsets)[:, :, :, None]  # n x P x p x 1
    cols = (xs[:, :, None] + offsets)[:, :, None, :]  # n x P x 1 x p
    batch = torch.arange(n)[:, None, None, None]
    patches = level[batch, :, rows, cols]  # n x P x p x p x C (advanced indices first)
    return patches.permute(0, 1, 4, 2, 3).reshape(n * per_image, -1, patch_size, patch_size)


def multiscale_sliced_wasserstein(
    images_a: ArrayLike,
    images_b: ArrayLike,
    patch_size: int = 7,
    patches_per_image: int = 16,
    n_projections: int = 128,
    min_resolution: int | None = None,
    seed: int = 0,
) -> float:
    """Multi-scale SWD of Karras et al. 2018 (ProGAN), simplified for small images; mean over levels.

    Laplacian levels run from full size down to min_resolution (default: patch_size). Deviations:
    random patch positions with n_projections fixed directions per level instead of 4 x 512
    directions, and each level's descriptors are normalised per channel with the statistics of
    both sets pooled (ProGAN normalises each set on its own, which hides global colour shifts).
    """
    a, b = _images(images_a, "images_a"), _images(images_b, "images_b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"image shapes differ: {tuple(a.shape[1:])} vs {tuple(b.shape[1:])}")
    if patch_size < 1 or patches_per_image < 1:
        raise ValueError("patch_size and patches_per_image must be >= 1")
    floor = max(patch_size, min_resolution if min_resolution is not None else patch_size, 3)
    size = min(a.shape[-2:])
    if size < floor:
        raise ValueError(f"images of side {size} are smaller than the {floor}-pixel patch/level minimum")
    n_levels = 1
    while math.ceil(size / 2**n_levels) >= floor:
        n_levels += 1

    a, b = a.cpu(), b.cpu()
    rng = np.random.default_rng(seed)
    distances = []
    for level, (la, lb) in enumerate(zip(laplacian_pyramid(a, n_levels), laplacian_pyramid(b, n_levels))):
        da = _patch_descriptors(la, patch_size, patches_per_image, rng).to(torch.float64)
        db = _patch_descriptors(lb, patch_size, patches_per_image, rng).to(torch.float64)
        pooled = torch.cat([da, db])
        mean = pooled.mean(dim=(0, 2, 3), keepdim=True)
        std = pooled.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
        da, db = ((da - mean) / std).flatten(1), ((db - mean) / std).flatten(1)
        distances.append(sliced_wasserstein(da, db, n_projections=n_projections, seed=seed + level))
    return float(np.mean(distances))


# ------------------------------------------------------------------- paired image metrics


def psnr(pred: ArrayLike, target: ArrayLike, data_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB, per image then averaged (torchmetrics); [-1,1] -> range 2.

    Identical images give inf.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = _image_pair(pred, target)
    return float(peak_signal_noise_ratio(p, t, data_range=data_range, dim=(1, 2, 3)))


def ssim(pred: ArrayLike, target: ArrayLike, data_range: float = 2.0, kernel_size: int = 11) -> float:
    """Mean SSIM (Wang et al. 2004) with the standard 11x11, sigma 1.5 Gaussian window (torchmetrics).

    Images need sides of at least kernel_size // 2 + 1; pass a smaller odd kernel_size for tiny ones.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, t = _image_pair(pred, target)
    return float(
        structural_similarity_index_measure(p, t, data_range=data_range, kernel_size=kernel_size)
    )


def l1(pred: ArrayLike, target: ArrayLike) -> float:
    """Mean absolute error over all pixels (torchmetrics), the usual paired-translation L1."""
    from torchmetrics.functional.regression import mean_absolute_error

    p, t = _image_pair(pred, target)
    return float(mean_absolute_error(p, t))


# ------------------------------------------------------------------ toy mixture mode metrics


def mixture_quality(
    points: ArrayLike, centers: ArrayLike, std: float, n_std: float = 3.0, min_share: float = 0.1
) -> dict[str, Any]:
    """Mode coverage and sample quality on Gaussian-mixture toys (VEEGAN, Srivastava et al. 2017).

    High quality: within n_std * std of the nearest centre. A mode is covered when it received at
    least max(1, min_share * N / K) high-quality samples, i.e. 10% of its share under equal mode
    weights by default, so a few stray samples do not count; min_share=0 gives VEEGAN's "at least
    one".
    """
    p, c = _feature_pair(points, centers, ("points", "centers"))
    if std <= 0 or n_std <= 0 or min_share < 0:
        raise ValueError("std and n_std must be > 0 and min_share >= 0")
    distances, nearest = _knn(p, c, 1)
    good = distances[:, 0] <= n_std * std
    counts = np.bincount(nearest[good, 0], minlength=c.shape[0])
    threshold = max(1.0, min_share * p.shape[0] / c.shape[0])
    return {
        "modes_covered": int((counts >= threshold).sum()),
        "high_quality_share": float(good.mean()),
        "per_mode_counts": [int(n) for n in counts],
    }


# ------------------------------------------------------------------------------ memorisation


def memorisation_report(
    fake: ArrayLike,
    train: ArrayLike,
    heldout: ArrayLike,
    copy_ratio: float = 0.5,
    distance_fraction: float = 0.1,
    top_k: int = 10,
    max_train_queries: int = 2000,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Flag generated samples that look like copies of training samples (nearest-neighbour test).

    ratio = d(fake, nearest train) / d(fake, nearest held-out); a sample is flagged when
    ratio < copy_ratio and d_train < distance_fraction * median train-to-train NN distance (taken
    over up to max_train_queries train rows). Use a held-out set of about the train set's size:
    a much larger train set lowers every ratio.
    """
    f, tr = _feature_pair(fake, train, ("fake", "train"))
    _, ho = _feature_pair(fake, heldout, ("fake", "heldout"))
    ho = ho.to(device=f.device, dtype=f.dtype)
    if tr.shape[0] < 2:
        raise ValueError("train needs at least 2 samples")
    d_train = _knn(f, tr, 1, chunk_size=chunk_size)[0][:, 0]
    d_held = _knn(f, ho, 1, chunk_size=chunk_size)[0][:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        # 0/0 (fake equal to a sample present in both sets) carries no evidence: ratio 1.
        ratio = np.where(d_held > 0, d_train / d_held, np.where(d_train > 0, np.inf, 1.0))

    rng = np.random.default_rng(seed)
    n_queries = min(max_train_queries, tr.shape[0])
    queries = np.sort(rng.choice(tr.shape[0], n_queries, replace=False))
    train_nn = _knn(tr[torch.from_numpy(queries).to(tr.device)], tr, 1, queries, chunk_size)[0][:, 0]
    scale = float(np.median(train_nn))

    flagged = (ratio < copy_ratio) & (d_train < distance_fraction * scale)
    flagged_idx = np.flatnonzero(flagged)
    top = flagged_idx[np.argsort(ratio[flagged_idx], kind="stable")][:top_k]
    return {
        "share_flagged": float(flagged.mean()),
        "n_flagged": int(flagged.sum()),
        "median_ratio": float(np.median(ratio)),
        "train_nn_median": scale,
        "top_flagged_indices": [int(i) for i in top],
    }


# ------------------------------------------------------------------------------ real floor


def real_floor(feats: ArrayLike, fn: Callable[..., Any], seed: int = 0, **kwargs: Any) -> Any:
    """A two-set metric on two random disjoint halves of one real set: the real-vs-real floor.

    Distances between finite samples are never 0 (and FID is biased upwards at small N), so this
    is the value a perfect generator would get at the same sample size; log it beside fn(real, fake).
    """
    n = len(feats)
    if n < 4:
        raise ValueError(f"need at least 4 samples to split in halves, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    half = n // 2
    first, second = perm[:half], perm[half : 2 * half]
    if isinstance(feats, torch.Tensor):
        first, second = torch.from_numpy(first), torch.from_numpy(second)
        return fn(feats[first.to(feats.device)], feats[second.to(feats.device)], **kwargs)
    arr = np.asarray(feats)
    return fn(arr[first], arr[second], **kwargs)
