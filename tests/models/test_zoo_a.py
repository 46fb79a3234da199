"""cGAN, BigGAN and the 2-D toy GAN: network shapes, one training step per family, export and
sampling, resumable state, config checks; the mixture and faces data sources and the
conditional/toy/image metrics on known inputs."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from ganpipe.config import DataConfig, load_config
from ganpipe.data.loading import load_manifest, load_tensors
from ganpipe.data.prepare import prepare
from ganpipe.data.sources import SOURCES, read_source
from ganpipe.errors import ConfigError
from ganpipe.evaluate.metrics import METRICS, EvalContext, evaluate
from ganpipe.gans import FAMILIES, DataInfo, Sampler, sampler_from_export
from ganpipe.gans.biggan import standing_stats, truncated_normal
from ganpipe.gans.ema import EMA
from ganpipe.gans.cgan import cycle_labels
from ganpipe.models.biggan import (
    BigGANDiscriminator,
    BigGANGenerator,
    SelfAttention,
    orthogonal_penalty,
    upsample2x,
    z_chunks,
)
from ganpipe.models.cgan import CGANDiscriminator, CGANGenerator
from ganpipe.models.toy import ToyDiscriminator, ToyGenerator
from ganpipe.train.loop import Batcher, build_recipe

import ganpipe.evaluate.metrics_images  # noqa: F401  (registers 'swd')

TINY = {
    "cgan": ("configs/cgan-digits.yaml", ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8", "train.batch_size=16"]),
    "biggan": (
        "configs/biggan-digits.yaml",
        ["data.image_size=8", "model.params.g_ch=4", "model.params.d_ch=4", "model.params.shared_dim=8", "train.batch_size=16"],
    ),
    "toy": ("configs/toy-ring8.yaml", ["model.params.g_width=16", "model.params.d_width=16", "train.batch_size=32"]),
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ring8(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zoo-a") / "ring8"
    prepare("ring8", out, DataConfig(source="ring8"))
    return out


def _data(family: str, digits8: Path, ring8: Path) -> Path:
    return ring8 if family == "toy" else digits8


# -- networks -------------------------------------------------------------------------------

def test_cgan_networks_condition_on_one_hot_inputs():
    g, d = CGANGenerator(16, 1, 16, 10, width=8), CGANDiscriminator(1, 16, 10, width=8)
    assert g.net[0].in_channels == 16 + 10  # z ++ one-hot
    assert d.net[0].in_channels == 1 + 10  # image ++ one-hot maps
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 3])
    x = g(z, y)
    assert x.shape == (4, 1, 16, 16) and x.abs().max() <= 1
    assert d(x, y).shape == (4,)
    g.eval()
    assert not torch.allclose(g(z, y), g(z, (y + 1) % 10))  # the label changes the output


@pytest.mark.parametrize("size", [8, 16, 32, 64, 128])
def test_biggan_shapes_at_every_resolution(size):
    attn = 8 if size > 8 else 0
    g = BigGANGenerator(40, 3, size, 5, ch=2, shared_dim=4, attn_res=attn)
    d = BigGANDiscriminator(3, size, 5, ch=2, attn_res=attn)
    y = torch.tensor([0, 4])
    x = g(torch.randn(2, 40), y)
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
    assert d(x, y).shape == (2,)
    assert sum(isinstance(m, SelfAttention) for m in g.modules()) == (1 if attn else 0)
    assert len(g.blocks) == int(np.log2(size // 4))


def test_biggan_hierarchical_z_and_shared_embedding():
    assert z_chunks(64, 3) == [22, 21, 21] and sum(z_chunks(10, 4)) == 10
    with pytest.raises(ValueError):
        z_chunks(2, 3)
    g = BigGANGenerator(30, 1, 16, 10, ch=4, shared_dim=6)
    assert g.chunks == [10, 10, 10]
    # Each block's conditional BN sees [its z chunk, shared embedding].
    assert [b.bn1.gain.in_features for b in g.blocks] == [16, 16]
    g.eval()
    z = torch.randn(3, 30)
    z2 = z.clone()
    z2[:, 20:] = torch.randn(3, 10)  # change only the last block's chunk
    y = torch.tensor([1, 2, 3])
    assert not torch.allclose(g(z, y), g(z2, y))


def test_projection_discriminator_depends_on_class():
    d = BigGANDiscriminator(1, 16, 10, ch=4)
    x = torch.randn(2, 1, 16, 16)
    assert not torch.allclose(d(x, torch.tensor([0, 0])), d(x, torch.tensor([1, 1])))


def test_biggan_uses_spectral_norm_everywhere():
    g, d = BigGANGenerator(30, 1, 16, 10, ch=4, attn_res=16), BigGANDiscriminator(1, 16, 10, ch=4, attn_res=8)
    for net in (g, d):
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                assert hasattr(m, "parametrizations"), m
    assert hasattr(d.embed, "parametrizations")  # projection embedding too


def test_self_attention_starts_as_identity():
    a = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(a(x), x)


def test_upsample_matches_nearest_interpolation():
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(upsample2x(x), torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


def test_orthogonal_penalty_ignores_diagonal():
    lin = torch.nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        lin.weight.copy_(3.0 * torch.eye(4))  # orthogonal rows with norm 3: no penalty
    assert orthogonal_penalty(lin).item() == pytest.approx(0.0)
    with torch.no_grad():
        lin.weight.copy_(torch.ones(4, 4))  # gram all 4s: 12 off-diagonal entries of 16
    assert orthogonal_penalty(lin).item() == pytest.approx(12 * 16.0)
    assert orthogonal_penalty(lin, skip=(lin.weight,)).item() == 0.0


def test_truncated_normal_stays_within_threshold():
    z = truncated_normal((2000, 8), 0.5, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5 and z.std() > 0.2
    with pytest.raises(ValueError):
        truncated_normal((2, 2), 0.0, torch.Generator())


def test_ema_averages_weights_and_batchnorm_stats():
    src = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    dst = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = EMA(src, dst, decay=0.5)
    assert torch.equal(dst[0].weight, src[0].weight)  # starts as a copy
    before = dst[0].weight.clone()
    with torch.no_grad():
        src[0].weight.add_(1.0)
        src[1].running_mean.fill_(2.0)
    ema.update()  # warm-up decay min(0.5, 2/11) = 2/11
    d = 2 / 11
    assert torch.allclose(dst[0].weight, d * before + (1 - d) * src[0].weight)
    assert torch.allclose(dst[1].running_mean, torch.full((2,), 2.0 * (1 - d)))
    assert not dst[0].weight.requires_grad


def test_ema_copies_the_source_until_its_start_then_averages():
    src, dst = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ema = EMA(src, dst, decay=0.9, start=2)
    for _ in range(2):  # updates 1 and 2: copies
        with torch.no_grad():
            src.weight.add_(1.0)
        ema.update()
        assert torch.equal(dst.weight, src.weight)
    before = dst.weight.clone()
    with torch.no_grad():
        src.weight.add_(1.0)
    ema.update()  # first averaging update: t = 1, decay min(0.9, 2/11)
    d = 2 / 11
    assert torch.allclose(dst.weight, d * before + (1 - d) * src.weight)


def test_standing_stats_average_g_own_batch_statistics_over_passes():
    g = BigGANGenerator(8, 1, 8, 3, ch=4, shared_dim=4)
    with torch.no_grad():  # running stats that have nothing to do with G's activations
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.fill_(5.0)
                m.running_var.fill_(7.0)
    ref = {k: v.clone() for k, v in g.state_dict().items()}
    s = standing_stats(g, batches=4, batch_size=16, z_dim=8, num_classes=3, seed=0)
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in ref.items())  # the original is untouched
    assert not s.training and s.out_bn.momentum == g.out_bn.momentum and s.out_bn.num_batches_tracked == 4
    # out_bn's standing mean is the mean over the 4 passes of each pass's batch mean of its input.
    # Replayed on a copy whose BatchNorm layers normalise by batch statistics, weights fixed.
    replay, seen = copy.deepcopy(g).eval(), []
    for m in replay.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()
    replay.out_bn.register_forward_hook(lambda m, i, o: seen.append(i[0].mean((0, 2, 3))))
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(4):
            replay(torch.randn(16, 8, generator=rng), torch.randint(0, 3, (16,), generator=rng))
    assert torch.allclose(s.out_bn.running_mean, torch.stack(seen).mean(0), atol=1e-5)
    # Weights (and spectral norm's vectors) are the original's.
    assert all(torch.equal(s.state_dict()[k], v) for k, v in ref.items() if "running" not in k and "num_batches" not in k)


def test_toy_networks():
    g, d = ToyGenerator(4, width=8, depth=2), ToyDiscriminator(width=8, depth=3)
    assert g(torch.randn(5, 4)).shape == (5, 2) and d(torch.randn(5, 2)).shape == (5,)
    assert sum(isinstance(m, torch.nn.Linear) for m in d.modules()) == 4


def test_packed_discriminator_judges_consecutive_samples_jointly():
    d = ToyDiscriminator(width=8, depth=2, pack=3)
    x = torch.randn(6, 2)
    out = d(x)
    assert out.shape == (2,) and d.net[0].in_features == 6
    assert torch.allclose(out[1], d(x[3:6])[0])  # samples 3..5 form the second pack
    swapped = x.clone()
    swapped[[0, 3]] = x[[3, 0]]  # moving a sample to another pack changes both packs' scores
    assert not torch.allclose(d(swapped), out)


# -- recipes: one step, export, resume ---------------------------------------------------------

@pytest.mark.parametrize("family", ["cgan", "biggan", "toy"])
def test_one_train_step_export_and_resume(family, digits8, ring8):
    path, sets = TINY[family]
    cfg = load_config(path, sets)
    data = _data(family, digits8, ring8)
    torch.manual_seed(0)
    recipe = build_recipe(cfg, data, torch.device("cpu"))
    before = {k: v.clone() for k, v in recipe.G.state_dict().items()}
    batches = Batcher(load_tensors(data, "train"), cfg.train.batch_size, 0, torch.device("cpu"))
    logs = recipe.train_step(batches, 1)
    assert all(torch.isfinite(v).all() for v in logs.values()), logs
    after = recipe.G.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # G moved

    spec, state = recipe.export()
    assert spec["family"] == family
    sampler = sampler_from_export(spec, state)
    assert isinstance(sampler, Sampler)
    x = sampler.generate(6, seed=3)
    if family == "toy":
        assert sampler.output_kind == "points" and spec["output_kind"] == "points" and x.shape == (6, 2)
    else:
        assert x.shape == (6, 1, 8, 8) and spec["num_classes"] == 10
        assert torch.equal(x, sampler.generate(6, seed=3))  # seeded
        assert torch.equal(sampler.generate(4, seed=3, labels=torch.tensor([7])), sampler.generate(4, seed=3, labels=torch.tensor([7, 7, 7, 7])))

    # The recipe state round-trips into a fresh recipe (resume).
    fresh = build_recipe(cfg, data, torch.device("cpu"))
    fresh.load_state_dict(recipe.state_dict())
    for k, v in recipe.export()[1].items():
        assert torch.equal(v, fresh.export()[1][k])


def test_biggan_exports_the_ema_generator_and_logs_ortho(digits8):
    path, sets = TINY["biggan"]
    cfg = load_config(path, sets)
    recipe = build_recipe(cfg, digits8, torch.device("cpu"))
    batches = Batcher(load_tensors(digits8, "train"), cfg.train.batch_size, 0, torch.device("cpu"))
    for step in range(1, 4):
        logs = recipe.train_step(batches, step)
    assert logs["ortho"] > 0
    assert recipe.ema.updates == 3 and recipe.extra_state() == {"ema_updates": 3}
    exported = recipe.export()[1]
    key = "blocks.0.conv1.parametrizations.weight.original"
    assert torch.equal(exported[key], recipe.G_ema.state_dict()[key])
    assert not torch.equal(exported[key], recipe.G.state_dict()[key])
    assert "G_ema" in recipe.modules()
    sampler = recipe.sampler()
    t = sampler.generate(8, seed=0, truncation=0.5)
    assert t.shape == (8, 1, 8, 8) and not torch.equal(t, sampler.generate(8, seed=0))


def test_biggan_exports_standing_statistics_when_asked(digits8):
    path, sets = TINY["biggan"]
    cfg = load_config(path, sets + ["model.params.standing_stats=3", "model.params.ema_start=2"])
    recipe = build_recipe(cfg, digits8, torch.device("cpu"))
    batches = Batcher(load_tensors(digits8, "train"), cfg.train.batch_size, 0, torch.device("cpu"))
    for step in range(1, 3):
        recipe.train_step(batches, step)
    assert torch.equal(recipe.G_ema.out_bn.running_mean, recipe.G.out_bn.running_mean)  # before ema_start: a copy
    spec, state = recipe.export()
    assert int(state["out_bn.num_batches_tracked"]) == 3  # three standing passes, not training's count
    assert not torch.equal(state["out_bn.running_mean"], recipe.G_ema.out_bn.running_mean)
    assert torch.equal(recipe.export()[1]["out_bn.running_mean"], state["out_bn.running_mean"])  # seeded
    assert sampler_from_export(spec, state).generate(4, seed=0).shape == (4, 1, 8, 8)


def test_cycle_labels():
    assert cycle_labels(5, 3).tolist() == [0, 1, 2, 0, 1]
    assert cycle_labels(5, 3, torch.tensor([2, 1])).tolist() == [2, 1, 2, 1, 2]
    with pytest.raises(ValueError, match="0..2"):
        cycle_labels(2, 3, torch.tensor([3]))


# -- config and data checks ---------------------------------------------------------------------

@pytest.mark.parametrize("family", ["cgan", "biggan", "toy"])
def test_unknown_param_is_a_config_error(family):
    path, _ = TINY[family]
    with pytest.raises(ConfigError, match=r"unknown key 'model.params.widht'"):
        load_config(path, ["model.params.widht=3"])


def test_shipped_configs_load():
    for name in ("cgan-digits", "biggan-digits", "toy-ring8", "toy-grid25", "dcgan-faces"):
        cfg = load_config(f"configs/{name}.yaml")
        assert cfg.name == name
        for metric in cfg.eval.metrics:
            METRICS.get(metric)


@pytest.mark.parametrize(
    "sets, match",
    [
        (["model.params.attn_res=12"], "attn_res=12"),
        (["model.params.attn_res=32"], "attn_res=32"),  # larger than a 16px image
        (["model.z_dim=2"], "z_dim=2 is too small"),
        (["data.image_size=12"], "image_size=12"),
    ],
)
def test_biggan_config_checks(sets, match):
    with pytest.raises(ConfigError, match=match):
        load_config("configs/biggan-digits.yaml", sets)


def test_biggan_accepts_every_loss():
    for loss in ("minimax", "nonsaturating", "wgan", "wgan-gp", "hinge", "lsgan"):
        assert load_config("configs/biggan-digits.yaml", [f"loss.name={loss}"]).loss.name == loss


def test_toy_config_checks():
    with pytest.raises(ConfigError, match="2-D points"):
        load_config("configs/toy-ring8.yaml", ["data.source=digits"])
    with pytest.raises(ConfigError, match="lr_final"):
        load_config("configs/toy-ring8.yaml", ["model.params.lr_final=0"])
    with pytest.raises(ConfigError, match="not a multiple of model.params.pack=3"):
        load_config("configs/toy-ring8.yaml", ["model.params.pack=3", "train.batch_size=256"])


def test_conditional_families_need_labels():
    for family in ("cgan", "biggan"):
        with pytest.raises(ConfigError, match="no classes"):
            FAMILIES.get(family).check_data(DataInfo(kind="images", image_size=16, channels=1, num_classes=0))
        with pytest.raises(ConfigError, match="images"):
            FAMILIES.get(family).check_data(DataInfo(kind="points"))
    with pytest.raises(ConfigError, match="points"):
        FAMILIES.get("toy").check_data(DataInfo(kind="images", image_size=16, channels=1))


def test_toy_trains_with_every_loss(ring8):
    for loss in ("minimax", "nonsaturating", "wgan", "wgan-gp", "hinge", "lsgan"):
        path, sets = TINY["toy"]
        cfg = load_config(path, [*sets, f"loss.name={loss}", "loss.n_critic=2", "model.params.pack=2"])
        recipe = build_recipe(cfg, ring8, torch.device("cpu"))
        logs = recipe.train_step(Batcher(load_tensors(ring8, "train"), 32, 0, torch.device("cpu")), 1)
        assert all(torch.isfinite(v) for v in logs.values()), (loss, logs)


# -- data sources ---------------------------------------------------------------------------------

def test_mixture_sources_are_deterministic_points(ring8):
    m = load_manifest(ring8)
    assert m["kind"] == "points" and m["num_classes"] == 0 and m["extra"]["std"] == 0.02
    assert len(m["extra"]["centers"]) == 8 and sum(m["counts"].values()) == 20_000
    x = load_tensors(ring8, "train")["x"]
    assert x.dtype == torch.float32 and x.shape[1] == 2
    assert torch.allclose(x.norm(dim=1).mean(), torch.tensor(2.0), atol=0.01)  # on the circle

    a = read_source("grid25", DataConfig(source="grid25", seed=1))
    b = read_source("grid25", DataConfig(source="grid25", seed=1))
    assert np.array_equal(a.arrays["x"], b.arrays["x"])
    centers = np.array(a.extra["centers"])
    assert centers.shape == (25, 2) and centers.min() == -4 and centers.max() == 4
    err = a.arrays["x"] - centers[a.arrays["label"]]
    assert abs(err.std() - 0.05) < 0.002
    assert SOURCES.get("ring8").materialize is None  # generated at prepare time


def test_faces_source_materialises_the_lfw_faces(tmp_path):
    src = SOURCES.get("faces")
    folder = src.materialize(tmp_path)
    assert folder == tmp_path / "faces" and len(list((folder / "face").glob("*.png"))) == 100
    out = tmp_path / "prepared"
    m = prepare("faces", out, DataConfig(source="faces", raw_root=str(tmp_path), image_size=src.default_size))
    assert m["image_size"] == 32 and m["channels"] == 1 and m["class_names"] == ["face"]
    assert sum(m["counts"].values()) == 100


# -- metrics ----------------------------------------------------------------------------------------

class ReplaySampler(Sampler):
    """Hands back fixed tensors: metrics on known inputs."""

    def __init__(self, data, num_classes=0, output_kind="images"):
        super().__init__({"num_classes": num_classes}, torch.nn.Identity())
        self.data, self.output_kind = data, output_kind

    @staticmethod
    def build_generator(spec):
        return torch.nn.Identity()

    def generate(self, n, seed=0, labels=None, inputs=None, **kw):
        if callable(self.data):
            return self.data(n, labels)
        return self.data[:n]


def test_mixture_metric_on_real_and_collapsed_points(ring8, tmp_path):
    real = load_tensors(ring8, "test")["x"]
    values, _ = evaluate(EvalContext(ReplaySampler(real, output_kind="points"), ring8, tmp_path, num_samples=1000), ["mixture"])
    assert values["modes_covered"] == 8 and values["high_quality_share"] > 0.97
    assert values["modes_covered_real"] == 8 and values["modes_total"] == 8
    collapsed = torch.tensor([[2.0, 0.0]]).repeat(1000, 1)
    values, _ = evaluate(EvalContext(ReplaySampler(collapsed, output_kind="points"), ring8, tmp_path, num_samples=1000), ["mixture"])
    assert values["modes_covered"] == 1 and values["high_quality_share"] == 1.0


def test_mixture_metric_rejects_image_data(digits8, tmp_path):
    with pytest.raises(ConfigError, match="mixture"):
        evaluate(EvalContext(ReplaySampler(torch.zeros(10, 2)), digits8, tmp_path, num_samples=10), ["mixture"])


def test_conditional_metrics_with_a_perfect_and_a_useless_generator(digits8, tmp_path):
    test = load_tensors(digits8, "test")
    by_class = {c: test["image"][test["label"] == c] for c in range(10)}

    def perfect(n, labels):  # a real test image of the requested class (classes cycled if none given)
        labels = labels if labels is not None else torch.arange(n) % 10
        return torch.stack([by_class[int(y)][i % len(by_class[int(y)])] for i, y in enumerate(labels)])

    ctx = EvalContext(ReplaySampler(perfect, num_classes=10), digits8, tmp_path, num_samples=200, classifier_steps=150)
    values, _ = evaluate(ctx, ["cond_acc", "cis"])
    assert values["cond_acc"] > 0.7 and values["cond_acc_chance"] == 0.1
    assert values["cis_real"] > 5 and values["cis_max"] == 10

    blank = ReplaySampler(lambda n, labels: torch.full((n, 1, 8, 8), -1.0), num_classes=10)
    values, _ = evaluate(EvalContext(blank, digits8, tmp_path, num_samples=200, classifier_steps=150), ["cond_acc", "cis"])
    assert values["cond_acc"] == pytest.approx(0.1, abs=0.001) and values["cis"] == pytest.approx(1.0, abs=1e-6)


def test_cond_acc_needs_a_conditional_generator(digits8, tmp_path):
    ctx = EvalContext(ReplaySampler(torch.zeros(10, 1, 8, 8)), digits8, tmp_path, num_samples=10, classifier_steps=5)
    with pytest.raises(ConfigError, match="class-conditional"):
        evaluate(ctx, ["cond_acc"])


def test_swd_metric_floor_below_noise(digits8, tmp_path):
    noise = torch.rand(300, 1, 8, 8) * 2 - 1
    values, info = evaluate(EvalContext(ReplaySampler(noise), digits8, tmp_path, num_samples=300), ["swd"])
    assert values["swd_floor"] < 0.5 * values["swd"]
    assert info["swd"]["n_fake"] == 300


def test_dcgan_learning_rates_hold_then_decay_linearly_and_resume_on_the_curve(digits8):
    """model.params.lr_final/decay_start: constant for the first half, then linear to 0; a
    function of the step alone, so a resumed recipe (whose optimizer state carries the
    decayed rate) follows the same curve."""
    cfg = load_config("configs/dcgan-digits.yaml", ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8", "train.batch_size=16",
                                                    "train.steps=10", "model.params.lr_final=0", "model.params.decay_start=0.5", "optim.lr_d=4e-4"])  # fmt: skip
    recipe = build_recipe(cfg, digits8, torch.device("cpu"))
    batches = Batcher(load_tensors(digits8, "train"), cfg.train.batch_size, 0, torch.device("cpu"))
    seen = []
    for step in range(1, 11):
        recipe.train_step(batches, step)
        seen.append((recipe.opt_g.param_groups[0]["lr"], recipe.opt_d.param_groups[0]["lr"]))
    assert [round(g / 2e-4, 6) for g, _ in seen] == [1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0]
    assert all(abs(d - 2 * g) < 1e-12 for g, d in seen)  # D's own rate, on the same curve
    fresh = build_recipe(cfg, digits8, torch.device("cpu"))
    fresh.load_state_dict(recipe.state_dict())  # resets to the configured rates (PBT mutations win)
    fresh.train_step(batches, 8)
    assert fresh.opt_g.param_groups[0]["lr"] == pytest.approx(0.4 * 2e-4)
    const = build_recipe(load_config("configs/dcgan-digits.yaml", ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8"]), digits8, torch.device("cpu"))
    assert const.lr_factor(cfg.train.steps) == 1.0  # the default keeps them constant
