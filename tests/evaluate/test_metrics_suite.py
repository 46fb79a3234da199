"""The evaluation suite on the digits: clear offline failure for Inception metrics, copies flagged
by memorisation and precision, classifier KID near zero for real against real.

Any fixed feature extractor shows these properties, so the classifier cache is seeded with an
untrained (seeded) SmallClassifier instead of spending a minute training one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

import ganpipe.evaluate.metrics_suite  # noqa: F401  (registers the suite)
from ganpipe.data.loading import load_manifest, load_tensors
from ganpipe.errors import ConfigError
from ganpipe.evaluate.metrics import METRICS, EvalContext, evaluate
from ganpipe.gans.base import Sampler

STEPS = 7  # classifier cache key only: nothing is trained


def seed_classifier(data_dir: Path, cache_dir: Path, steps: int = STEPS) -> None:
    """Put a seeded untrained classifier where load_or_train looks for this data set's one."""
    from ganpipe.evaluate.classifier import SmallClassifier, cache_key

    m = load_manifest(data_dir)
    torch.manual_seed(0)
    model = SmallClassifier(m["channels"], m["num_classes"])
    folder = cache_dir / "classifiers"
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(m, steps, 0)
    torch.save(model.state_dict(), folder / f"{key}.pt")
    (folder / f"{key}.json").write_text(json.dumps({"test_accuracy": 0.0}))


class ImagesSampler(Sampler):
    """A 'generator' that hands out given images: the training set (a perfect copier) or noise."""

    def __init__(self, images: torch.Tensor):
        super().__init__({"family": "fixed", "z_dim": 0, "num_classes": 0}, torch.nn.Identity())
        self.images = images

    @staticmethod
    def build_generator(spec):
        return torch.nn.Identity()

    def generate(self, n, seed=0, labels=None, inputs=None, **kw):
        idx = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(seed))[:n]
        return self.images[idx]


@pytest.fixture(scope="module")
def cache(tmp_path_factory, digits_prepared) -> Path:
    folder = tmp_path_factory.mktemp("eval-cache")
    seed_classifier(digits_prepared, folder)
    return folder


def context(sampler: Sampler, data: Path, cache: Path, n: int = 400) -> EvalContext:
    return EvalContext(sampler, data, cache, num_samples=n, seed=3, classifier_steps=STEPS)


@pytest.fixture(scope="module")
def train_images(digits_prepared) -> torch.Tensor:
    return load_tensors(digits_prepared, "train")["image"]


@pytest.fixture(scope="module")
def noise_images(train_images) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(train_images.shape, generator=g) * 2 - 1


@pytest.mark.parametrize("metric", ["fid", "kid", "is"])
def test_missing_inception_weights_is_a_clear_error_offline(metric, monkeypatch, tmp_path, digits_prepared, cache):
    import ganpipe.evaluate.metrics_suite as suite

    def no_download(*a, **k):
        raise AssertionError("torchmetrics' or torch-fidelity's own download was attempted")

    class NoSampling(ImagesSampler):
        def generate(self, *a, **k):
            raise AssertionError("samples were generated before the weights were checked")

    def offline(url, dest, timeout_s=20.0):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(suite, "download", offline)
    ctx = context(NoSampling(torch.zeros(4, 1, 16, 16)), digits_prepared, cache)

    monkeypatch.setenv("GANPIPE_INCEPTION_WEIGHTS", str(tmp_path / "missing.pth"))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="Inception weights not found") as e:
        METRICS.get(metric)(ctx)
    assert time.perf_counter() - t0 < 5
    assert str(tmp_path / "missing.pth") in e.value.message and "GANPIPE_INCEPTION_WEIGHTS" in e.value.message
    assert str(suite.cache_path(ctx)) in e.value.hint and "fcd" in e.value.hint

    monkeypatch.delenv("GANPIPE_INCEPTION_WEIGHTS")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache
    with pytest.raises(ConfigError, match="torch hub cache.*download from .* failed: OSError") as e:
        METRICS.get(metric)(ctx)
    assert suite.WEIGHTS_URL in e.value.hint and not suite.cache_path(ctx).exists()


def _random_inception_weights(path: Path) -> Path:
    """torch-fidelity's InceptionV3 state dict (its file format) with random values."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    saved = tf_inception.FeatureExtractorInceptionV3.load_state_dict
    tf_inception.load_state_dict_from_url = lambda *a, **k: {}  # no download: the module keeps its init
    tf_inception.FeatureExtractorInceptionV3.load_state_dict = lambda self, state, *a, **k: None
    try:
        torch.manual_seed(0)
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        tf_inception.FeatureExtractorInceptionV3.load_state_dict = saved
        tf_inception.load_state_dict_from_url = torch.hub.load_state_dict_from_url
    torch.save(net.state_dict(), path)
    return path


def test_inception_metrics_from_a_local_weights_file_match_torchmetrics(tmp_path, monkeypatch):
    import numpy as np
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import write_prepared
    from ganpipe.data.sources import Examples

    rng = np.random.default_rng(0)
    data = tmp_path / "tiny"
    write_prepared(Examples("images", {"image": rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8)}), data, DataConfig(), "synthetic")
    weights = _random_inception_weights(tmp_path / "weights.pth")
    fake = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ctx = EvalContext(ImagesSampler(fake), data, tmp_path / "cache", num_samples=12, seed=5, inception_weights=str(weights))
    values, info = evaluate(ctx, ["fid", "kid", "is"])

    u8 = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # noqa: E731  (ganpipe's conversion)
    real, gen = u8(ctx.heldout["image"]), u8(ctx.fake)
    net = lambda f: NoTrainInceptionV3("inception-v3-compat", [f], str(weights))  # noqa: E731
    fid = FrechetInceptionDistance(feature=net("2048"))
    fid.update(real, real=True)
    fid.update(gen, real=False)
    assert values["fid"] == pytest.approx(float(fid.compute()), rel=1e-4)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        kid = KernelInceptionDistance(feature=net("2048"), subsets=50, subset_size=info["kid"]["subset_size"])
        kid.update(real, real=True)
        kid.update(gen, real=False)
        k_mean, _ = kid.compute()
    assert values["kid"] == pytest.approx(float(k_mean), rel=1e-4, abs=1e-9)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        inc = InceptionScore(feature=net("logits_unbiased"), splits=10)
        inc.update(gen)
        is_mean, _ = inc.compute()
    assert values["is"] == pytest.approx(float(is_mean), rel=1e-4)
    assert not (tmp_path / "cache" / "inception").exists()  # a configured file: nothing downloaded or copied


def test_copying_sampler_is_flagged_and_an_unrelated_one_is_not(digits_prepared, cache, train_images, noise_images):
    copier, _ = evaluate(context(ImagesSampler(train_images), digits_prepared, cache), ["pr", "memorisation"])
    noise, info = evaluate(context(ImagesSampler(noise_images), digits_prepared, cache), ["pr", "memorisation"])

    assert copier["memorisation_share"] > 0.95 and copier["memorisation_median_ratio"] == 0.0
    assert noise["memorisation_share"] == 0.0
    assert copier["memorisation_share_real"] == noise["memorisation_share_real"] < 0.05  # real images: not copies
    # Training images are as real as the reference set; noise is off the real manifold.
    assert copier["precision"] > 0.8 and copier["recall"] > 0.8
    assert noise["precision"] < 0.2 and noise["coverage"] < 0.2
    assert abs(copier["precision"] - copier["precision_real"]) < 0.1
    for name in ("pr", "memorisation"):
        assert {"extractor", "n_fake", "floor"} <= set(info[name]), info[name]
        assert info[name]["n_fake"] == 400 and "classifier" in info[name]["extractor"]
    assert info["pr"]["floor"]["precision"] == noise["precision_real"]


def test_kid_classifier_is_near_zero_for_real_against_real(digits_prepared, cache, train_images, noise_images):
    real, info = evaluate(context(ImagesSampler(train_images), digits_prepared, cache, n=200), ["kid_classifier"])
    noise, _ = evaluate(context(ImagesSampler(noise_images), digits_prepared, cache, n=200), ["kid_classifier"])
    scale = noise["kid_classifier"]
    assert scale > 0
    assert abs(real["kid_classifier"]) < 0.02 * scale
    assert abs(real["kid_classifier_floor"]) < 0.02 * scale
    assert info["kid_classifier"]["floor"] == real["kid_classifier_floor"]
    assert info["kid_classifier"]["n_fake"] == 200 and info["kid_classifier"]["subset_size"] == 200


def test_suite_names_are_registered_and_cis_is_not_redefined():
    import ganpipe.evaluate.metrics_conditional as conditional

    assert {"fid", "kid", "is", "pr", "memorisation", "kid_classifier"} <= set(METRICS.names())
    assert METRICS.get("cis") is conditional.classifier_inception_score


class FirstImagesSampler(ImagesSampler):
    def generate(self, n, seed=0, labels=None, inputs=None, **kw):
        return self.images[:n]


def test_classifier_trains_on_part_of_the_training_split_only():
    from ganpipe.evaluate.classifier import split_train

    fit, held = split_train(1437)
    assert len(held) == 718 and len(fit) == 719
    assert sorted(torch.cat([fit, held]).tolist()) == list(range(1437))  # disjoint, together all
    assert torch.equal(held, split_train(1437)[1])  # seeded


def test_fcd_floor_uses_as_many_images_the_classifier_never_saw(digits_prepared, cache):
    from ganpipe.evaluate.classifier import split_train

    probe = context(ImagesSampler(torch.zeros(1, 1, 8, 8)), digits_prepared, cache)
    train = probe.split("train")["image"]
    unseen = train[split_train(len(train))[1]]
    assert torch.equal(probe.unseen_train, unseen)
    # A 'generator' that returns exactly the floor's images scores exactly the floor.
    values, info = evaluate(context(FirstImagesSampler(unseen), digits_prepared, cache, n=300), ["fcd"])
    assert values["fcd"] == pytest.approx(values["fcd_floor"], rel=1e-9) and values["fcd_floor"] > 0
    assert info["fcd"]["n_fake"] == info["fcd"]["n_floor"] == 300
    # More samples than unseen images: both sides use as many as there are unseen images.
    _, info = evaluate(context(ImagesSampler(train), digits_prepared, cache, n=len(train)), ["fcd"])
    assert info["fcd"]["n_fake"] == info["fcd"]["n_floor"] == len(unseen) < len(train)
