"""DiffAugment (`train.augment`): differentiable transforms, applied to real and generated
images before every D call; off by default and kept out of run names when off."""

from __future__ import annotations

import pytest
import torch

from ganpipe.config import load_config
from ganpipe.errors import ConfigError
from ganpipe.gans.augment import diff_augment
from ganpipe.train.loop import Batcher, build_recipe

POLICY = ["color", "translation", "cutout"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("policy", [["color"], ["translation"], ["cutout"], POLICY])
def test_augmentations_are_differentiable_and_change_the_images(policy):
    torch.manual_seed(0)
    x = (torch.rand(6, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, policy)
    assert y.shape == x.shape and not torch.allclose(y, x)
    w = torch.randn_like(y)
    (grad,) = torch.autograd.grad((y * w).sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0

    def fixed_draws(t):  # the same random transform at every call, as gradcheck needs
        torch.manual_seed(1)
        return diff_augment(t, policy)

    assert torch.autograd.gradcheck(fixed_draws, (x[:2].detach().requires_grad_(True),), eps=1e-6, atol=1e-5)


def test_translation_shifts_with_zero_fill_and_cutout_zeroes_a_square():
    x = torch.ones(50, 1, 8, 8)
    t = diff_augment(x, ["translation"])
    assert ((t == 0) | (t == 1)).all() and (t == 0).any()  # zero border shifted in, nothing else changed
    c = diff_augment(x, ["cutout"])
    zeros = (c == 0).flatten(1).sum(1)
    assert zeros.max() == 16 and zeros.min() >= 4  # a 4x4 square, clipped at the border


def _dcgan(digits8, augment):
    cfg = load_config(
        "configs/dcgan-digits.yaml",
        ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8", "train.batch_size=16", f"train.augment={augment}"],
    )
    torch.manual_seed(0)
    r = build_recipe(cfg, digits8, torch.device("cpu"))
    b = Batcher({"image": torch.rand(32, 1, 8, 8) * 2 - 1}, 16, 0, torch.device("cpu"))
    return cfg, r, b


def test_recipe_augments_real_and_fake_before_every_d_call(digits8):
    cfg, r, b = _dcgan(digits8, "color,translation,cutout")
    assert cfg.train.augment == POLICY
    calls, d_inputs = [], []
    plain = r.augment

    def spy(x):
        out = plain(x)
        calls.append((x, out))
        return out

    r.augment = spy
    hook = r.D.register_forward_pre_hook(lambda m, args: d_inputs.append(args[0]))
    seen = {}

    def next_batch():
        seen.update(b())
        return seen

    r.train_step(next_batch, 1)
    hook.remove()
    assert len(calls) == 3  # D step: real and fake; G step: fake
    assert all(d is out for d, (_, out) in zip(d_inputs, calls))  # D saw only augmented images
    assert calls[0][0] is seen["image"]  # the real batch
    assert calls[1][0].shape == calls[2][0].shape == seen["image"].shape and calls[2][0].requires_grad  # G's output, with its graph
    assert all(not torch.equal(x, out) for x, out in calls)


def test_augment_off_by_default_and_refused_where_d_judges_pairs_or_points(digits8):
    cfg, r, b = _dcgan(digits8, "off")
    assert cfg.train.augment == [] and load_config("configs/dcgan-digits.yaml").train.augment == []
    x = torch.rand(4, 1, 8, 8)
    assert r.augment(x) is x
    on = load_config("configs/dcgan-digits.yaml", ["train.augment=color,translation,cutout"])
    assert on.run_name != load_config("configs/dcgan-digits.yaml").run_name
    for path in ("configs/toy-ring8.yaml", "configs/pix2pix-colorize.yaml", "configs/cyclegan-textures.yaml"):
        with pytest.raises(ConfigError, match="DiffAugment applies where D judges single images"):
            load_config(path, ["train.augment=color"])
    with pytest.raises(ConfigError, match="augment"):
        load_config("configs/dcgan-digits.yaml", ["train.augment=zoom"])
