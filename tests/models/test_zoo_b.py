"""Pix2Pix and CycleGAN: network shapes, one training step, export/sampling, resumable state,
and the config/data checks that reject the wrong kind of data."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from ganpipe.config import DataConfig, build_config, load_config
from ganpipe.data.prepare import write_prepared
from ganpipe.data.sources import Examples
from ganpipe.errors import ConfigError
from ganpipe.gans import FAMILIES, DataInfo, sampler_from_export
from ganpipe.gans.cyclegan import ImagePool
from ganpipe.losses import LOSSES
from ganpipe.models.cyclegan import ResnetGenerator, TranslatorPair, patch_discriminator
from ganpipe.models.pix2pix import PatchDiscriminator, UNetGenerator
from ganpipe.specs.shapes import patch_output_size
from ganpipe.train.loop import Batcher, build_recipe

P2P = "configs/pix2pix-colorize.yaml"
CYC = "configs/cyclegan-textures.yaml"
TINY_P2P = ["data.image_size=16", "model.params.g_width=4", "model.params.d_width=4", "train.batch_size=4"]
TINY_CYC = ["data.image_size=16", "model.params.g_width=4", "model.params.d_width=4", "model.params.n_blocks=1", "train.batch_size=4"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _prepared(tmp_path: Path, kind: str, size: int = 16, channels: int = 3, n: int = 24) -> Path:
    rng = np.random.default_rng(0)
    imgs = lambda: rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)  # noqa: E731
    second = "target" if kind == "paired" else "image_b"
    out = tmp_path / kind
    write_prepared(Examples(kind, {"image": imgs(), second: imgs()}), out, DataConfig(), "synthetic")
    return out


# -- networks -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [4, 8, 16, 32, 64])
def test_unet_depth_follows_image_size(size):
    g = UNetGenerator(1, 3, size, width=4)
    assert len(g.downs) == int(np.log2(size))  # halves down to 1 x 1
    g.eval()
    y = g(torch.randn(2, 1, size, size))
    assert y.shape == (2, 3, size, size) and y.abs().max() <= 1


def test_unet_has_skips_and_dropout_noise():
    g = UNetGenerator(3, 3, 16, width=4, dropout=0.5, dropout_layers=2)
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 2
    x = torch.randn(4, 3, 16, 16)
    g.train()
    assert not torch.allclose(g(x), g(x))  # dropout is G's noise source
    g.eval()
    assert torch.allclose(g(x), g(x))


@pytest.mark.parametrize("size, layers", [(16, 1), (16, 2), (32, 2), (32, 3), (64, 3)])
def test_patch_discriminator_outputs_one_logit_per_patch(size, layers):
    d = PatchDiscriminator(6, width=4, n_layers=layers)
    p = patch_output_size(size, layers)
    assert d(torch.randn(2, 6, size, size)).shape == (2, 1, p, p) and p >= 1


def test_resnet_generator_and_pair():
    g = ResnetGenerator(1, 1, width=4, n_blocks=2, n_down=2)
    assert g(torch.randn(2, 1, 16, 16)).shape == (2, 1, 16, 16)
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in g.modules()) == 2 + 2 * 2
    pair = TranslatorPair(3, width=4, n_blocks=1)
    keys = pair.state_dict().keys()
    assert any(k.startswith("G_AB.") for k in keys) and any(k.startswith("G_BA.") for k in keys)
    d = patch_discriminator(3, width=4, n_layers=2)
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in d.modules())
    assert d(torch.randn(2, 3, 16, 16)).shape == (2, 1, 2, 2)


# -- configs ---------------------------------------------------------------------------------

def test_default_configs_load():
    p = load_config(P2P)
    assert (p.model.family, p.loss.name, p.model.params["lambda_l1"], p.registry.gate_metric, p.registry.mode) == (
        "pix2pix", "nonsaturating", 100.0, "psnr", "max")
    c = load_config(CYC)
    assert (c.model.family, c.loss.name, c.model.params["lambda_cycle"], c.model.params["pool_size"]) == ("cyclegan", "lsgan", 10.0, 50)
    assert (c.registry.gate_metric, c.registry.mode) == ("target_swd", "min")


@pytest.mark.parametrize(
    "config, overrides, fragments",
    [
        (P2P, ["data.source=textures"], ["paired", "colorize", "aligned:PATH"]),
        (P2P, ["data.source=digits"], ["paired", "'images'"]),
        (P2P, ["data.source=unaligned:/x"], ["paired"]),
        (CYC, ["data.source=colorize"], ["unpaired", "textures", "unaligned:PATH"]),
        (P2P, ["data.image_size=24"], ["power of two"]),
        (P2P, ["data.image_size=16", "model.params.d_layers=3"], ["d_layers=2"]),
        (P2P, ["loss.name=wgan-gp"], ["norm=instance"]),
        (CYC, ["data.image_size=18"], ["n_down"]),
        (CYC, ["loss.n_critic=2"], ["n_critic=1"]),
        (CYC, ["model.params.pool=3"], ["unknown key 'model.params.pool'"]),
    ],
)
def test_bad_translation_configs_are_clear_errors(config, overrides, fragments):
    with pytest.raises(ConfigError) as e:
        load_config(config, overrides)
    text = str(e.value)
    for f in fragments:
        assert f in text


def test_importer_sources_of_the_right_kind_are_accepted():
    load_config(P2P, ["data.source=aligned:/some/facades"])
    load_config(CYC, ["data.source=unaligned:/some/horse2zebra"])


@pytest.mark.parametrize("family, wrong", [("pix2pix", "unpaired"), ("pix2pix", "images"), ("cyclegan", "paired")])
def test_check_data_rejects_the_wrong_kind(family, wrong):
    with pytest.raises(ConfigError, match="data is"):
        FAMILIES.get(family).check_data(DataInfo(kind=wrong, image_size=16, channels=3))


# -- pix2pix ---------------------------------------------------------------------------------

def test_pix2pix_step_export_and_sampling(tmp_path):
    data = _prepared(tmp_path, "paired")
    cfg = load_config(P2P, TINY_P2P)
    torch.manual_seed(0)
    r = build_recipe(cfg, data, torch.device("cpu"))
    batches = Batcher({"image": torch.rand(8, 3, 16, 16) * 2 - 1, "target": torch.rand(8, 3, 16, 16) * 2 - 1}, 4, 0, torch.device("cpu"))
    before = [p.clone() for p in r.G.parameters()]
    logs = r.train_step(batches, 1)
    assert {"loss_d", "loss_g", "loss_l1", "loss_g_adv", "fake_std"} <= logs.keys()
    assert all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, r.G.parameters()))

    spec, state = r.export()
    assert (spec["family"], spec["in_channels"], spec["out_channels"], spec["channels"], spec["image_size"]) == ("pix2pix", 3, 3, 3, 16)
    s = sampler_from_export(spec, state)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    y = s.generate(5, seed=0, inputs=x)
    assert y.shape == (5, 3, 16, 16) and torch.equal(y[3], y[0])  # inputs cycled to n
    assert torch.equal(s.generate(3, seed=1, inputs=x), s.generate(3, seed=2, inputs=x))  # no dropout when sampling
    gray = s.generate(3, inputs=x[:, :1])  # one channel is replicated for a 3-channel model
    assert gray.shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="inputs are required"):
        s.generate(4, seed=0)
    with pytest.raises(ValueError, match="N x 3 x 16 x 16"):
        s.generate(4, inputs=torch.zeros(2, 3, 8, 8))


def test_pix2pix_sample_dropout_uses_the_seed(tmp_path):
    data = _prepared(tmp_path, "paired")
    cfg = load_config(P2P, TINY_P2P + ["model.params.sample_dropout=true"])
    s = build_recipe(cfg, data, torch.device("cpu")).sampler()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(s.generate(2, seed=3, inputs=x), s.generate(2, seed=3, inputs=x))
    assert not torch.equal(s.generate(2, seed=3, inputs=x), s.generate(2, seed=4, inputs=x))


def test_pix2pix_wgan_gp_with_instance_norm_steps(tmp_path):
    data = _prepared(tmp_path, "paired")
    cfg = load_config(P2P, TINY_P2P + ["loss.name=wgan-gp", "model.params.norm=instance", "loss.n_critic=2"])
    r = build_recipe(cfg, data, torch.device("cpu"))
    b = Batcher({"image": torch.rand(8, 3, 16, 16), "target": torch.rand(8, 3, 16, 16)}, 4, 0, torch.device("cpu"))
    logs = r.train_step(b, 1)
    assert float(logs["penalty"]) > 0


def test_pix2pix_refuses_unpaired_prepared_data(tmp_path):
    data = _prepared(tmp_path, "unpaired")
    with pytest.raises(ConfigError, match="paired data"):
        build_recipe(load_config(P2P, TINY_P2P), data, torch.device("cpu"))


# -- cyclegan --------------------------------------------------------------------------------

def _cyclegan(tmp_path, extra=()):
    data = _prepared(tmp_path, "unpaired", channels=1)
    cfg = load_config(CYC, TINY_CYC + ["train.steps=10", *extra])
    torch.manual_seed(0)
    r = build_recipe(cfg, data, torch.device("cpu"))
    b = Batcher({"image": torch.rand(8, 1, 16, 16) * 2 - 1, "image_b": torch.rand(8, 1, 16, 16) * 2 - 1}, 4, 0, torch.device("cpu"))
    return cfg, data, r, b


def test_cyclegan_step_export_and_both_directions(tmp_path):
    cfg, data, r, b = _cyclegan(tmp_path)
    logs = r.train_step(b, 1)
    assert {"loss_d", "loss_g", "loss_cycle", "loss_identity", "lr_g"} <= logs.keys()
    assert all(torch.isfinite(v) for v in logs.values())
    assert set(r.modules()) == {"G_AB", "G_BA", "D_A", "D_B"}

    spec, state = r.export()
    assert spec["family"] == "cyclegan" and {k.split(".")[0] for k in state} == {"G_AB", "G_BA"}
    s = sampler_from_export(spec, state)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    ab, ba = s.generate(3, inputs=x), s.generate(3, inputs=x, direction="BtoA")
    assert ab.shape == ba.shape == (3, 1, 16, 16) and not torch.allclose(ab, ba)
    assert torch.equal(ab, s.generate(3, inputs=x, direction="AtoB"))
    with pytest.raises(ValueError, match="AtoB, BtoA"):
        s.generate(3, inputs=x, direction="sideways")
    with pytest.raises(ValueError, match="inputs are required"):
        s.generate(3)


def test_cyclegan_g_adversarial_term_is_the_reference_mse(tmp_path):
    # junyanz/pytorch-CycleGAN-and-pix2pix: G's lsgan term is MSE(D(G(x)), 1), no 1/2 (the
    # standalone lsgan G loss keeps Mao et al.'s 1/2).
    cfg, data, r, b = _cyclegan(tmp_path, ["model.params.n_blocks=0", "model.params.pool_size=0"])
    assert cfg.loss.name == "lsgan"
    before = copy.deepcopy(r.modules())
    seen: dict = {}

    def next_batch():
        seen.update(b())
        return seen

    logs = r.train_step(next_batch, 1)
    with torch.no_grad():
        d_b = before["D_B"](before["G_AB"](seen["image"]))
        d_a = before["D_A"](before["G_BA"](seen["image_b"]))
    expected = ((d_b - 1) ** 2).mean() + ((d_a - 1) ** 2).mean()
    assert float(logs["loss_g_adv"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(LOSSES.get("lsgan").g_loss(d_b)) == pytest.approx(0.5 * float(((d_b - 1) ** 2).mean()), rel=1e-6)


def test_cyclegan_lr_is_constant_then_decays_linearly_to_zero(tmp_path):
    cfg, data, r, b = _cyclegan(tmp_path, ["model.params.n_blocks=0"])
    lrs = []
    for step in range(1, 11):
        lrs.append(float(r.train_step(b, step)["lr_g"]))
    base = cfg.optim.lr_g
    assert lrs[:5] == pytest.approx([base] * 5)  # first half of train.steps=10
    assert lrs[5:] == pytest.approx([base * f for f in (1.0, 0.8, 0.6, 0.4, 0.2)])
    assert r.opt_g.param_groups[0]["lr"] == pytest.approx(0.0) and r.opt_d.param_groups[0]["lr"] == pytest.approx(0.0)


def test_cyclegan_state_round_trip_keeps_schedule_and_pools(tmp_path):
    cfg, data, r, b = _cyclegan(tmp_path, ["model.params.n_blocks=0"])
    for step in range(1, 8):
        r.train_step(b, step)
    state = r.state_dict()
    path = tmp_path / "state.pt"
    torch.save(state, path)
    loaded = torch.load(path, weights_only=True)  # what checkpoints use: no pickled code
    r2 = build_recipe(cfg, data, torch.device("cpu"))
    r2.load_state_dict(loaded)
    assert r2.sched_g.last_epoch == r.sched_g.last_epoch == 7
    assert r2.opt_g.param_groups[0]["lr"] == pytest.approx(r.opt_g.param_groups[0]["lr"])
    assert torch.equal(r2.pool_a.images, r.pool_a.images) and len(r2.pool_b.images) == min(28, 50)


def test_image_pool_fills_then_swaps_half():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: images pass through
    new = torch.arange(100.0, 300.0).view(200, 1, 1, 1)
    out = pool.query(new)
    from_history = (out != new).sum().item()
    assert 60 < from_history < 140  # about half are swapped for a stored image
    assert len(pool.images) == 4
    assert ImagePool(0).query(new) is new


def test_cyclegan_refuses_paired_prepared_data(tmp_path):
    data = _prepared(tmp_path, "paired")
    with pytest.raises(ConfigError, match="unpaired data"):
        build_recipe(load_config(CYC, TINY_CYC), data, torch.device("cpu"))


def test_recipe_config_can_come_from_a_dict():
    raw = {"name": "p", "data": {"source": "colorize", "image_size": 8}, "model": {"family": "pix2pix", "params": {"d_layers": 1}}}
    cfg = build_config(raw)
    assert cfg.model.params["lambda_l1"] == 100.0
