"""Stacked digits (1000 modes) and the `stacked_modes` metric: the source's channels are
independent digits with the right labels, the metric counts modes and KL to uniform, and
PacGAN packing in the DCGAN discriminator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganpipe.config import DataConfig, load_config
from ganpipe.data.loading import load_manifest
from ganpipe.data.prepare import prepare
from ganpipe.data.stacked import digit_images, stack_digits
from ganpipe.errors import ConfigError, DataError
from ganpipe.evaluate.classifier import channel_view
from ganpipe.evaluate.metrics import EvalContext, evaluate
from ganpipe.evaluate.metrics_stacked import NUM_SAMPLES, channel_kl, mode_coverage
from ganpipe.models.dcgan import DCGANDiscriminator

pytestmark = pytest.mark.usefixtures("one_thread")


# -- the metric's arithmetic ---------------------------------------------------------------

def test_every_mode_equally_often_is_1000_modes_and_zero_kl():
    covered, kl = mode_coverage(np.repeat(np.arange(1000), 25), 1000)
    assert covered == 1000 and kl == pytest.approx(0.0, abs=1e-12)
    # 25,600 uniform draws: all modes and only the sampling noise, KL ~ 999 / (2 * 25,600)
    covered, kl = mode_coverage(np.random.default_rng(0).integers(0, 1000, NUM_SAMPLES), 1000)
    assert covered == 1000 and 0.005 < kl < 0.04


def test_collapsed_samples_cover_few_modes_with_large_kl():
    covered, kl = mode_coverage(np.tile(np.arange(10), 2560), 1000)  # 10 modes, equally often
    assert covered == 10 and kl == pytest.approx(math.log(100))
    covered, kl = mode_coverage(np.full(NUM_SAMPLES, 7), 1000)  # one mode
    assert covered == 1 and kl == pytest.approx(math.log(1000))


def test_channel_kl_separates_per_channel_imbalance_from_coupling():
    # Channels coupled (all three show the same digit), each channel uniform: 10 modes, but no
    # channel favours a digit, so all of the KL is the coupling.
    same = np.tile(np.arange(10) * 111, 2560)
    assert channel_kl(same, 10, 3) == pytest.approx(0.0, abs=1e-12) and mode_coverage(same, 1000)[1] == pytest.approx(math.log(100))
    # Independent channels that each favour digit 0 (p = 0.19, the rest 0.09): the joint KL is
    # the sum of the channels' KLs.
    p = np.full(10, 0.09)
    p[0] = 0.19
    rng = np.random.default_rng(0)
    d = rng.choice(10, size=(200_000, 3), p=p)
    modes = d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]
    one = float(np.sum(p * np.log(p * 10)))
    assert channel_kl(modes, 10, 3) == pytest.approx(3 * one, rel=0.03)
    assert mode_coverage(modes, 1000)[1] == pytest.approx(3 * one, abs=0.01)


def test_channel_view_labels_each_channel_by_its_digit():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    xs, ys = channel_view(x, torch.tensor([472, 9]), 10)
    assert xs.shape == (6, 1, 2, 2) and ys.tolist() == [4, 7, 2, 0, 0, 9]
    assert torch.equal(xs[4, 0], x[1, 1])  # image 1, channel 1


# -- the source ----------------------------------------------------------------------------

def test_stacked_channels_are_independent_digits_with_their_labels():
    base, labels = digit_images(8)
    x, modes = stack_digits(base, labels, 20_000, seed=3)
    assert x.shape == (20_000, 8, 8, 3) and x.dtype == np.uint8
    assert len(np.unique(modes)) == 1000  # every mode is there
    digits = np.stack([modes // 100, modes // 10 % 10, modes % 10], axis=1)
    flat = base.reshape(len(base), -1)
    for i in range(0, 20_000, 997):  # each channel is a base image of the class its label says
        for c in range(3):
            match = np.flatnonzero((flat == x[i, :, :, c].reshape(-1)).all(1))
            assert len(match) and set(labels[match]) == {digits[i, c]}
    # independence: the joint histogram of two channels' digits is the product of the marginals
    for a, b in ((0, 1), (0, 2), (1, 2)):
        joint = np.histogram2d(digits[:, a], digits[:, b], bins=10)[0] / len(digits)
        outer = np.outer(np.bincount(digits[:, a]) / len(digits), np.bincount(digits[:, b]) / len(digits))
        assert np.abs(joint - outer).max() < 0.005
    again, modes_again = stack_digits(base, labels, 20_000, seed=3)
    assert np.array_equal(again, x) and np.array_equal(modes_again, modes)
    assert not np.array_equal(stack_digits(base, labels, 100, seed=4)[1], modes[:100])


def test_stacked_digits_refuses_one_channel(tmp_path):
    with pytest.raises(DataError, match="3 channels"):
        prepare("stacked-digits", tmp_path / "s", DataConfig(source="stacked-digits", channels=1))


@pytest.fixture(scope="module")
def stacked8(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "stacked8"
    prepare("stacked-digits", out, DataConfig(source="stacked-digits", image_size=8))
    return out


class _Replay:
    """A 'generator' that returns given images in order (cycling), as a Sampler does."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def generate(self, n: int, seed: int = 0, **kw):
        idx = (torch.arange(n) + seed) % len(self.images)
        return self.images[idx]


def test_metric_on_real_images_and_on_a_collapsed_generator(stacked8, tmp_path, monkeypatch):
    from ganpipe.data.loading import load_tensors
    from ganpipe.evaluate import metrics_stacked

    monkeypatch.setattr(metrics_stacked, "NUM_SAMPLES", 10_240)  # 1000 modes still all drawn; a 2.5x cheaper test

    m = load_manifest(stacked8)
    assert m["channels"] == 3 and m["num_classes"] == 1000 and m["extra"]["channel_classes"] == 10
    test = load_tensors(stacked8, "test")["image"]
    ctx = lambda images: EvalContext(_Replay(images), stacked8, tmp_path, classifier_steps=300)  # noqa: E731
    real, _ = evaluate(ctx(load_tensors(stacked8, "train")["image"]), ["stacked_modes"])
    assert real["channel_classifier_test_accuracy"] > 0.9
    assert real["stacked_modes"] == 1000 and real["stacked_kl"] < 0.25
    assert real["stacked_modes_real"] == 1000 and abs(real["stacked_kl"] - real["stacked_kl_real"]) < 0.05
    collapsed, _ = evaluate(ctx(test[:5]), ["stacked_modes"])  # five images, over and over
    assert collapsed["stacked_modes"] <= 5 and collapsed["stacked_kl"] > math.log(1000 / 5) - 0.01
    assert collapsed["stacked_modes_real"] == 1000  # the reference does not depend on the generator


def test_metric_needs_a_stacked_set(digits8, tmp_path):
    with pytest.raises(ConfigError, match="stacked-digits"):
        evaluate(EvalContext(_Replay(torch.zeros(4, 1, 8, 8)), digits8, tmp_path), ["stacked_modes"])


# -- PacGAN packing in DCGAN ---------------------------------------------------------------

def test_packed_dcgan_discriminator_judges_consecutive_samples_jointly():
    d = DCGANDiscriminator(3, 16, width=8, norm="none", pack=2).eval()
    assert d.net[0].in_channels == 6  # two 3-channel samples stacked on channels
    x = torch.randn(8, 3, 16, 16)
    out = d(x)
    assert out.shape == (4,)
    assert torch.allclose(out[1], d(x[2:4])[0], atol=1e-6)  # samples 2 and 3 form the second pack
    swapped = x.clone()
    swapped[[0, 2]] = x[[2, 0]]  # moving a sample to another pack changes both packs' scores
    assert not torch.allclose(d(swapped)[:2], out[:2])


def test_pack_in_configs_and_run_names():
    cfg = load_config("configs/dcgan-stacked.yaml")
    assert cfg.model.params["pack"] == 2 and cfg.eval.metrics == ["stacked_modes"]
    with pytest.raises(ConfigError, match="not a multiple of model.params.pack=2"):
        load_config("configs/dcgan-stacked.yaml", ["train.batch_size=63"])
    base = load_config("configs/dcgan-digits.yaml")
    assert load_config("configs/dcgan-digits.yaml", ["model.params.pack=1"]).run_name == base.run_name
    assert load_config("configs/dcgan-digits.yaml", ["model.params.pack=2"]).run_name != base.run_name


def test_packed_dcgan_trains_a_step_on_stacked_digits(stacked8):
    from ganpipe.train.loop import Batcher, build_recipe
    from ganpipe.data.loading import load_tensors

    cfg = load_config("configs/dcgan-stacked.yaml", ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8", "train.batch_size=8"])
    recipe = build_recipe(cfg, stacked8, torch.device("cpu"))
    batches = Batcher(load_tensors(stacked8, "train"), 8, 0, torch.device("cpu"))
    logs = recipe.train_step(batches, 0)
    assert all(torch.isfinite(v).all() for v in logs.values())
    assert recipe.sampler().generate(4, seed=0).shape == (4, 3, 8, 8)


def test_dcgan_ema_is_the_exported_generator(digits8):
    from ganpipe.data.loading import load_tensors
    from ganpipe.train.loop import Batcher, build_recipe

    sets = ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8", "train.batch_size=8"]
    base = load_config("configs/dcgan-digits.yaml", [*sets, "model.params.ema_decay=0"])
    cfg = load_config("configs/dcgan-digits.yaml", [*sets, "model.params.ema_decay=0.9"])
    assert cfg.run_name != base.run_name and build_recipe(base, digits8, torch.device("cpu")).modules().keys() == {"G", "D"}
    recipe = build_recipe(cfg, digits8, torch.device("cpu"))
    batches = Batcher(load_tensors(digits8, "train"), 8, 0, torch.device("cpu"))
    start = {k: v.clone() for k, v in recipe.G.state_dict().items()}
    for step in range(3):
        recipe.train_step(batches, step)
    _, exported = recipe.export()
    k = "net.0.weight"
    assert torch.equal(exported[k], recipe.G_ema.state_dict()[k])
    assert not torch.equal(exported[k], recipe.G.state_dict()[k])  # the average lags G ...
    assert not torch.equal(exported[k], start[k])  # ... but has moved from the start
    assert recipe.extra_state() == {"ema_updates": 3}
