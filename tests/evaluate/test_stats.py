"""Tests for the pure GAN metric functions against closed forms and independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ganpipe.evaluate.stats import (
    density_coverage,
    frechet_distance,
    frechet_distance_from_stats,
    kernel_inception_distance,
    l1,
    laplacian_pyramid,
    memorisation_report,
    mixture_quality,
    multiscale_sliced_wasserstein,
    nearest_neighbours,
    precision_recall,
    psnr,
    real_floor,
    sliced_wasserstein,
    ssim,
)


def _ring_modes(n_modes: int = 10, radius: float = 30.0) -> np.ndarray:
    """Well separated 2-D modes: neighbours are ~18 units apart, samples have std 1."""
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _mixture(rng, centers: np.ndarray, n: int, modes=None, std: float = 1.0) -> np.ndarray:
    modes = np.arange(len(centers)) if modes is None else np.asarray(modes)
    return centers[modes[np.arange(n) % len(modes)]] + std * rng.standard_normal((n, centers.shape[1]))


# --------------------------------------------------------------------------- Fréchet distance


def test_frechet_from_stats_matches_closed_form_for_diagonal_covariances():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))  # 7.25 + (4 + 1 + 0)
    assert expected == pytest.approx(12.25)
    assert frechet_distance_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_from_stats_matches_eigenvalue_formula_for_full_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    # tr((S1 S2)^(1/2)) = sum of square roots of the (real, non-negative) eigenvalues of S1 S2.
    tr_sqrt = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_torchmetrics_on_random_features():
    from torchmetrics.image.fid import _compute_fid

    rng = np.random.default_rng(1)
    a = rng.standard_normal((400, 16))
    b = 1.3 * rng.standard_normal((300, 16)) @ rng.standard_normal((16, 16)) / 4 + 0.5
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    reference = _compute_fid(ta.mean(0), torch.cov(ta.T), tb.mean(0), torch.cov(tb.T))
    assert frechet_distance(a, b) == pytest.approx(float(reference), rel=1e-8)
    # torch float32 input gives the same value (computed in float64 internally)
    assert frechet_distance(ta.float(), tb.float()) == pytest.approx(float(reference), rel=1e-4)


def test_frechet_distance_of_samples_approaches_population_value():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((20000, 2)) * np.array([1.0, 2.0])
    b = rng.standard_normal((20000, 2)) * np.array([2.0, 2.0]) + np.array([1.0, 0.0])
    # ||(1,0)||^2 + (1 + 4 - 2*2) + (4 + 4 - 2*4) = 2
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=0.1)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(3).standard_normal((200, 32))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_rejects_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="feature sizes"):
        frechet_distance(x, np.zeros((10, 4)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(x, np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x[:1], x)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(8, 60),
    d=st.integers(1, 5),
    shift=st.floats(-3, 3),
)
def test_frechet_distance_is_symmetric_nonnegative_and_sees_translations(seed, n, d, shift):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * rng.uniform(0.1, 3, size=d)
    y = rng.standard_normal((n + 3, d)) + rng.standard_normal(d)
    fd_xy, fd_yx = frechet_distance(x, y), frechet_distance(y, x)
    assert fd_xy >= 0
    assert fd_xy == pytest.approx(fd_yx, rel=1e-6, abs=1e-8)
    # Same covariance, means apart by c: FD = ||c||^2.
    c = np.full(d, shift)
    assert frechet_distance(x, x + c) == pytest.approx(float(c @ c), rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------------------------- KID


def test_kid_matches_torchmetrics_poly_mmd_on_the_whole_set():
    from torchmetrics.image.kid import poly_mmd

    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((300, 32)), rng.standard_normal((300, 32)) + 0.2
    mean, std = kernel_inception_distance(a, b, subsets=3, subset_size=10_000)
    assert mean == pytest.approx(float(poly_mmd(torch.from_numpy(a), torch.from_numpy(b))), rel=1e-9)
    # subset_size is capped at the 300 available samples: every subset is a permutation of the set
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_unbiased_for_samples_of_one_distribution():
    rng = np.random.default_rng(5)
    estimates, biased = [], []
    for _ in range(20):
        a, b = rng.standard_normal((200, 64)), rng.standard_normal((200, 64))
        estimates.append(kernel_inception_distance(a, b, subsets=1, subset_size=200)[0])
        k = lambda u, v: (u @ v.T / 64 + 1) ** 3  # noqa: E731
        biased.append(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean())
    # The plug-in (biased) MMD^2 sits around 0.07 here; the unbiased one averages to ~0.
    assert np.mean(biased) > 0.05
    assert abs(np.mean(estimates)) < 0.01
    assert abs(np.mean(estimates)) < 3 * np.std(estimates) / math.sqrt(len(estimates)) + 1e-3

    mean, std = kernel_inception_distance(
        rng.standard_normal((1000, 64)), rng.standard_normal((1000, 64)), subsets=10, subset_size=500
    )
    assert abs(mean) < 3 * std


def test_kid_is_clearly_positive_for_shifted_distributions_and_grows_with_shift():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((1000, 64)), rng.standard_normal((1000, 64))
    small = kernel_inception_distance(a, b + 0.15, subsets=10, subset_size=500)
    large = kernel_inception_distance(a, b + 0.3, subsets=10, subset_size=500)
    assert small[0] > 5 * small[1] > 0
    assert large[0] > 2 * small[0]


def test_kid_is_reproducible_per_seed():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    first = kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=1)
    assert first == kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=1)
    assert first != kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=2)


# ---------------------------------------------------------------------------- nearest neighbours


def test_nearest_neighbours_match_brute_force_with_small_chunks():
    rng = np.random.default_rng(8)
    q, r = rng.standard_normal((53, 7)), rng.standard_normal((41, 7))
    dist, idx = nearest_neighbours(q, r, k=3, chunk_size=10)
    full = np.linalg.norm(q[:, None, :] - r[None, :, :], axis=-1)
    expected_idx = np.argsort(full, axis=1)[:, :3]
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(dist, np.take_along_axis(full, expected_idx, axis=1), rtol=1e-12)
    # float32 torch input finds the same neighbours
    _, idx32 = nearest_neighbours(torch.from_numpy(q).float(), torch.from_numpy(r).float(), k=3)
    np.testing.assert_array_equal(idx32, expected_idx)


def test_nearest_neighbours_exclude_self_and_exact_duplicates():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((30, 5)).astype(np.float32)
    x[7] = x[3]
    dist, idx = nearest_neighbours(x, x, k=1, exclude_self=True, chunk_size=4)
    assert np.all(idx[:, 0] != np.arange(30))
    assert idx[3, 0] == 7 and idx[7, 0] == 3
    assert dist[3, 0] == 0.0  # recomputed exactly, not via the matrix-product expansion
    dist_self, idx_self = nearest_neighbours(x, x, k=1)
    assert np.all(dist_self == 0.0)


# ------------------------------------------------------------- precision / recall, density / coverage


def test_precision_recall_identical_sets():
    real = _mixture(np.random.default_rng(10), _ring_modes(), 500)
    assert precision_recall(real, real) == {"precision": 1.0, "recall": 1.0}


def test_precision_recall_detects_dropped_modes():
    rng = np.random.default_rng(11)
    centers = _ring_modes()
    real = _mixture(rng, centers, 1000)
    half = precision_recall(real, _mixture(rng, centers, 1000, modes=range(5)))
    full = precision_recall(real, _mixture(rng, centers, 1000))
    assert half["precision"] > 0.9
    assert 0.4 < half["recall"] < 0.6
    assert full["precision"] > 0.9 and full["recall"] > 0.9


def test_precision_recall_chunking_does_not_change_the_result():
    rng = np.random.default_rng(12)
    real, fake = rng.standard_normal((120, 3)), rng.standard_normal((90, 3)) + 0.5
    assert precision_recall(real, fake, chunk_size=7) == precision_recall(real, fake)
    assert density_coverage(real, fake, chunk_size=7) == density_coverage(real, fake)


def test_density_coverage_sanity():
    rng = np.random.default_rng(13)
    centers = _ring_modes()
    real = _mixture(rng, centers, 1000)
    same = density_coverage(real, _mixture(rng, centers, 1000))
    half = density_coverage(real, _mixture(rng, centers, 1000, modes=range(5)))
    far = density_coverage(real, real + 500.0)
    identical = density_coverage(real, real)
    assert 0.85 < same["density"] < 1.15 and same["coverage"] > 0.9
    assert 0.85 < half["density"] < 1.15 and 0.4 < half["coverage"] < 0.6
    assert far == {"density": 0.0, "coverage": 0.0}
    assert identical["coverage"] == 1.0


def test_density_and_precision_drop_with_off_manifold_fakes():
    rng = np.random.default_rng(14)
    centers = _ring_modes()
    real = _mixture(rng, centers, 1000)
    fake = np.concatenate([_mixture(rng, centers, 500), _mixture(rng, centers, 500) + 500.0])
    assert 0.4 < density_coverage(real, fake)["density"] < 0.6
    assert 0.4 < precision_recall(real, fake)["precision"] < 0.6


# ------------------------------------------------------------------------------------- SWD


def test_sliced_wasserstein_small_for_same_distribution_and_monotone_in_shift():
    rng = np.random.default_rng(15)
    a, b = rng.standard_normal((500, 32)), rng.standard_normal((500, 32))
    values = [sliced_wasserstein(a, b + s) for s in (0.0, 0.25, 0.5, 1.0)]
    assert values[0] < 0.1
    assert all(x < y for x, y in zip(values, values[1:]))
    assert values[-1] > 5 * values[0]


def test_sliced_wasserstein_is_exact_1d_w1_for_unequal_sizes():
    rng = np.random.default_rng(16)
    a, b = rng.standard_normal(37) * 2, rng.exponential(size=53)
    # in 1-D every unit direction is +-1, so SWD is the W1 distance itself
    assert sliced_wasserstein(a[:, None], b[:, None]) == pytest.approx(scipy.stats.wasserstein_distance(a, b))
    assert sliced_wasserstein(np.array([[0.0], [1.0]]), np.array([[0.0], [1.0], [2.0]])) == pytest.approx(0.5)


def _smooth_images(rng, n: int, blur_passes: int, size: int = 32) -> torch.Tensor:
    x = torch.from_numpy(rng.standard_normal((n, 3, size, size))).float()
    kernel = torch.full((3, 1, 3, 3), 1 / 9)
    for _ in range(blur_passes):
        x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=3)
    return torch.tanh(x / x.std())


def test_multiscale_swd_separates_textures_and_brightness():
    rng = np.random.default_rng(17)
    a, b = _smooth_images(rng, 150, 3), _smooth_images(rng, 150, 3)
    other_texture = _smooth_images(rng, 150, 0)
    same = multiscale_sliced_wasserstein(a, b)
    assert multiscale_sliced_wasserstein(a, other_texture) > 3 * same
    shifted = [multiscale_sliced_wasserstein(a, (b + s).clamp(-1, 1)) for s in (0.0, 0.2, 0.5)]
    assert shifted[0] == pytest.approx(same)
    assert shifted[0] < shifted[1] < shifted[2]


def test_laplacian_pyramid_reconstructs_the_image():
    x = _smooth_images(np.random.default_rng(18), 2, 1, size=28)
    levels = laplacian_pyramid(x, 3)
    assert [tuple(level.shape[-2:]) for level in levels] == [(28, 28), (14, 14), (7, 7)]
    # collapse: upsample the coarse level the same way and add the band back
    from ganpipe.evaluate.stats import _blur

    recon = levels[-1]
    for band in reversed(levels[:-1]):
        up = torch.zeros(*recon.shape[:2], 2 * recon.shape[2], 2 * recon.shape[3])
        up[:, :, ::2, ::2] = 4 * recon
        recon = band + _blur(up)[:, :, : band.shape[2], : band.shape[3]]
    torch.testing.assert_close(recon, x, atol=1e-5, rtol=0)


def test_multiscale_swd_rejects_images_smaller_than_a_patch():
    x = torch.zeros(4, 1, 6, 6)
    with pytest.raises(ValueError, match="smaller"):
        multiscale_sliced_wasserstein(x, x)


# ------------------------------------------------------------------------------- paired metrics


def test_psnr_averages_per_image_values():
    target = torch.zeros(2, 1, 4, 4)
    pred = torch.cat([torch.full((1, 1, 4, 4), 0.5), torch.full((1, 1, 4, 4), 0.1)])
    # MSE 0.25 and 0.01 with range 2: 10*log10(4/0.25) = 12.041, 10*log10(4/0.01) = 26.021
    expected = (10 * math.log10(16) + 10 * math.log10(400)) / 2
    assert psnr(pred, target) == pytest.approx(expected, rel=1e-6)
    assert psnr(pred[:1].numpy(), target[:1].numpy(), data_range=1.0) == pytest.approx(10 * math.log10(4), rel=1e-6)


def test_ssim_of_constant_images_matches_the_formula():
    # constant images: both variances and the covariance vanish, leaving the luminance term
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    x, y = -0.5, 0.5
    expected = ((2 * x * y + c1) * c2) / ((x * x + y * y + c1) * c2)
    pred, target = torch.full((2, 3, 16, 16), x), torch.full((2, 3, 16, 16), y)
    assert ssim(pred, target) == pytest.approx(expected, rel=1e-5)
    noise = torch.rand(2, 3, 16, 16) * 2 - 1
    assert ssim(noise, noise) == pytest.approx(1.0, abs=1e-6)


def test_l1_is_mean_absolute_difference():
    pred = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    target = torch.tensor([[[[0.0, 0.0], [0.5, -1.0]]]])
    assert l1(pred, target) == pytest.approx((1 + 1 + 0 + 1) / 4)
    with pytest.raises(ValueError, match="shapes differ"):
        l1(pred, target[..., :1])


# ------------------------------------------------------------------------------- mixture modes


def _grid_centers() -> np.ndarray:
    return np.array([(x, y) for x in range(-4, 5, 2) for y in range(-4, 5, 2)], dtype=float)


def test_mixture_quality_on_exact_grid_samples():
    rng = np.random.default_rng(19)
    centers, std = _grid_centers(), 0.05
    points = _mixture(rng, centers, 2500, std=std)
    result = mixture_quality(points, centers, std)
    assert result["modes_covered"] == 25
    assert result["high_quality_share"] > 0.95
    assert len(result["per_mode_counts"]) == 25
    assert sum(result["per_mode_counts"]) == round(result["high_quality_share"] * 2500)


def test_mixture_quality_on_collapsed_samples():
    rng = np.random.default_rng(20)
    centers, std = _grid_centers(), 0.05
    points = _mixture(rng, centers, 2500, modes=[0, 12, 24], std=std)
    result = mixture_quality(torch.from_numpy(points).float(), centers, std)
    assert result["modes_covered"] == 3
    assert [i for i, n in enumerate(result["per_mode_counts"]) if n > 0] == [0, 12, 24]


def test_mixture_quality_threshold_and_low_quality_samples():
    rng = np.random.default_rng(21)
    centers, std = _grid_centers(), 0.05
    stray = centers[[5]] + np.array([[0.01, 0.0], [0.0, 0.01]])
    points = np.concatenate([_mixture(rng, centers, 2500, modes=[0, 12, 24], std=std), stray])
    assert mixture_quality(points, centers, std)["modes_covered"] == 3  # 2 samples < 10% of 100
    assert mixture_quality(points, centers, std, min_share=0.0)["modes_covered"] == 4
    between = centers[:10] + np.array([1.0, 1.0])  # halfway between modes: 28 std away
    off = mixture_quality(between, centers, std)
    assert off["high_quality_share"] == 0.0 and off["modes_covered"] == 0


# ------------------------------------------------------------------------------- memorisation


def test_memorisation_flags_exact_and_near_copies():
    rng = np.random.default_rng(22)
    train, heldout = rng.standard_normal((600, 32)), rng.standard_normal((600, 32))
    fresh = rng.standard_normal((80, 32))
    copies = train[:20] + 1e-3 * rng.standard_normal((20, 32))
    copies[:10] = train[:10]
    fake = np.concatenate([fresh, copies]).astype(np.float32)
    report = memorisation_report(fake, train, heldout)
    assert report["n_flagged"] == 20
    assert report["share_flagged"] == pytest.approx(0.2)
    assert set(report["top_flagged_indices"]) <= set(range(80, 100))
    assert len(report["top_flagged_indices"]) == 10
    # exact copies have ratio 0 and come first
    assert set(report["top_flagged_indices"]) == set(range(80, 90))
    assert report["median_ratio"] == pytest.approx(1.0, abs=0.2)


def test_memorisation_is_quiet_for_fresh_samples_and_heldout_copies():
    rng = np.random.default_rng(23)
    train, heldout = rng.standard_normal((600, 32)), rng.standard_normal((600, 32))
    fresh = memorisation_report(rng.standard_normal((300, 32)), train, heldout)
    assert fresh["share_flagged"] < 0.02
    assert 0.8 < fresh["median_ratio"] < 1.2
    assert memorisation_report(heldout[:50], train, heldout)["n_flagged"] == 0


# ----------------------------------------------------------------------------------- real floor


def test_real_floor_applies_the_metric_to_two_disjoint_halves():
    rng = np.random.default_rng(24)
    feats = rng.standard_normal((101, 4))
    seen = []

    def record(a, b, **kwargs):
        seen.append((a, b, kwargs))
        return 1.5

    assert real_floor(feats, record, seed=3, tag="x") == 1.5
    a, b, kwargs = seen[0]
    assert a.shape == b.shape == (50, 4) and kwargs == {"tag": "x"}
    rows = {tuple(r) for r in np.concatenate([a, b])}
    assert len(rows) == 100 and rows <= {tuple(r) for r in feats}

    floor = real_floor(feats, frechet_distance, seed=3)
    assert floor == pytest.approx(frechet_distance(a, b))
    assert real_floor(torch.from_numpy(feats), frechet_distance, seed=3) == pytest.approx(floor)
    assert real_floor(feats, frechet_distance, seed=4) != floor
    mean, _ = real_floor(feats, kernel_inception_distance, subset_size=50)
    assert abs(mean) < 0.1
