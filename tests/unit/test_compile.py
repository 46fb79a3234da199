"""`train.compile`: recipes train through torch.compile'd G and D, and their checkpoints are
those of plain modules (no `_orig_mod.` keys), loadable with compile on or off."""

from __future__ import annotations

import shutil

import pytest
import torch

from ganpipe.config import build_config
from ganpipe.data.loading import load_tensors
from ganpipe.gans.base import sampler_from_export
from ganpipe.train.checkpoint import load_export, load_state, save_checkpoint
from ganpipe.train.loop import Batcher, build_recipe

CPU = torch.device("cpu")


def _why_compile_cannot_run() -> str | None:
    """A reason to skip when torch.compile cannot build CPU kernels here, else None."""
    if not (shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")):
        return "torch.compile (inductor) needs a C compiler on CPU; none found"
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(3))
    except Exception as e:  # e.g. a broken toolchain
        return f"torch.compile cannot run here: {type(e).__name__}: {str(e)[:200]}"
    return None


@pytest.fixture(scope="module")
def compile_ok() -> None:
    reason = _why_compile_cannot_run()
    if reason:
        pytest.skip(reason)


def _cfg(compile: bool):
    return build_config(
        {
            "model": {"family": "dcgan", "z_dim": 8, "params": {"g_width": 8, "d_width": 8}},
            "train": {"batch_size": 16, "compile": compile},
        }
    )


def test_compiled_recipe_trains_a_step_and_its_checkpoint_round_trips(compile_ok, digits8, tmp_path):
    """The one test through inductor (C++ code generation, tens of seconds on 2 cores); the
    others compile with `aot_eager`, which traces and differentiates the same graphs."""
    digits_prepared = digits8  # 8 x 8: fewer layers to generate code for
    torch.manual_seed(0)
    recipe = build_recipe(_cfg(True), digits_prepared, CPU)
    assert recipe.G._compiled_call_impl is not None and recipe.D._compiled_call_impl is not None
    batches = Batcher(load_tensors(digits_prepared, "train"), 16, 0, CPU)
    before = {k: v.clone() for k, v in recipe.G.state_dict().items()}
    for step in (1, 2):
        logs = recipe.train_step(batches, step)
    assert all(torch.isfinite(v).all() for v in logs.values())
    assert any(not torch.equal(before[k], v) for k, v in recipe.G.state_dict().items())  # G learned

    state = recipe.state_dict()
    keys = [k for m in state["modules"].values() for k in m]
    assert keys and not [k for k in keys if "_orig_mod" in k]
    spec, gen = recipe.export()
    assert set(gen) == set(before)  # the exported generator has the plain module's keys
    ck = save_checkpoint(tmp_path / "ck", step=2, recipe_state=state, export=(spec, gen), config=recipe.cfg.to_dict())

    # A plain (uncompiled) recipe resumes from it, weights and optimizer state exactly.
    plain = build_recipe(_cfg(False), digits_prepared, CPU)
    plain.load_state_dict(load_state(ck)["recipe"])
    for name in ("G", "D"):
        mine, theirs = recipe.modules()[name].state_dict(), plain.modules()[name].state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert plain.opt_g.state_dict()["state"].keys() == recipe.opt_g.state_dict()["state"].keys()

    # A compiled recipe loads it too (same keys); with equal weights its compiled forward
    # matches the plain one (batch 16 and no_grad: the graph train_step already compiled).
    recipe.load_state_dict(load_state(ck)["recipe"])
    z = torch.randn(16, 8)
    with torch.no_grad():
        torch.testing.assert_close(recipe.G(z), plain.G(z), rtol=1e-3, atol=1e-4)

    # The exported generator samples without any compiled code.
    spec2, gen2 = load_export(ck)
    assert sampler_from_export(spec2, gen2).generate(4, seed=0).shape == (4, 1, 8, 8)


def _biggan_cfg():
    return build_config(
        {
            "model": {"family": "biggan", "z_dim": 12, "params": {"g_ch": 2, "d_ch": 2, "shared_dim": 4, "attn_res": 0}},
            "loss": {"name": "hinge"},
            "train": {"batch_size": 8, "compile": True},
        }
    )


def test_spectral_norm_discriminator_stays_eager(digits_prepared):
    """D runs on real and on fake images before one backward; a compiled forward with spectral
    norm would overwrite the power-iteration vector the first forward saved, so such a D stays
    eager while G (one forward per backward) is compiled. Compilation is lazy: nothing runs here."""
    recipe = build_recipe(_biggan_cfg(), digits_prepared, CPU)
    assert recipe.G._compiled_call_impl is not None and recipe.D._compiled_call_impl is None
    assert recipe.G_ema._compiled_call_impl is None  # only exported, never trained
    cfg = build_config({"model": {"params": {"g_width": 8, "d_width": 8, "d_norm": "spectral"}}, "train": {"compile": True}})
    dcgan_sn = build_recipe(cfg, digits_prepared, CPU)
    assert dcgan_sn.G._compiled_call_impl is not None and dcgan_sn.D._compiled_call_impl is None


def test_biggan_trains_with_a_compiled_spectral_norm_generator(aot_eager, digits_prepared):
    """Spectral norm's in-place power iteration inside G's compiled forward and backward: a
    question for dynamo and aot_autograd, which `aot_eager` runs (inductor adds only codegen)."""
    torch.manual_seed(0)
    recipe = build_recipe(_biggan_cfg(), digits_prepared, CPU)
    batches = Batcher(load_tensors(digits_prepared, "train"), 8, 0, CPU)
    for step in (1, 2):
        logs = recipe.train_step(batches, step)
    assert all(torch.isfinite(v).all() for v in logs.values())
    assert not [k for k in recipe.state_dict()["modules"]["G"] if "_orig_mod" in k]


# -- every loss with compile, penalties included ---------------------------------------------
# The penalties (WGAN-GP, R1) differentiate D's input gradient again, which aot_autograd's
# compiled backward cannot do; their forwards run D eager (`gans.base.eager`). The check is in
# aot_autograd, which the `aot_eager` backend runs without inductor's slow C++ code generation.

LOSS_CASES = [
    ("minimax", 0.0), ("nonsaturating", 0.0), ("wgan", 0.0), ("wgan-gp", 0.0), ("hinge", 0.0), ("lsgan", 0.0),
    ("nonsaturating", 1.0),  # R1
]


@pytest.fixture
def aot_eager(monkeypatch):
    import torch._dynamo

    plain = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **kw: plain(self, *a, **{"backend": "aot_eager", **kw}))
    torch._dynamo.reset()
    yield torch._dynamo.utils.counters
    torch._dynamo.reset()


def _images(n: int, channels: int, size: int, *keys: str):
    g = torch.Generator().manual_seed(0)
    return lambda: {k: torch.rand(n, channels, size, size, generator=g) * 2 - 1 for k in keys}


def _train(family: str, loss: str, r1: float, kind: str, keys: tuple[str, ...], params: dict, compile: bool = True):
    from ganpipe.gans import FAMILIES, DataInfo

    cfg = build_config(
        {
            "data": {"source": {"images": "digits", "paired": "colorize", "unpaired": "textures"}[kind], "image_size": 8},
            "model": {"family": family, "z_dim": 4, "params": params},
            "loss": {"name": loss, "r1_weight": r1},
            "train": {"batch_size": 4, "compile": compile},
        }
    )
    torch.manual_seed(0)
    recipe = FAMILIES.get(family)(cfg, DataInfo(kind=kind, image_size=8, channels=1), CPU)
    batches = _images(4, 1, 8, *keys)
    return recipe, [recipe.train_step(batches, step) for step in (1, 2)]


@pytest.mark.parametrize("loss,r1", LOSS_CASES, ids=[f"{n}{'+r1' if r else ''}" for n, r in LOSS_CASES])
def test_every_loss_trains_compiled(loss, r1, aot_eager):
    recipe, logs = _train("dcgan", loss, r1, "images", ("image",), {"g_width": 4, "d_width": 4, "d_norm": "none"})
    assert recipe.D._compiled_call_impl is not None  # D is compiled; only the penalty's forwards are eager
    assert all(torch.isfinite(v).all() for step in logs for v in step.values())
    if loss == "wgan-gp" or r1:
        assert float(logs[-1]["penalty"]) > 0


@pytest.mark.parametrize("family,kind,keys,params", [
    ("pix2pix", "paired", ("image", "target"), {"g_width": 4, "d_width": 4, "d_layers": 1, "norm": "instance"}),
    ("cyclegan", "unpaired", ("image", "image_b"), {"g_width": 4, "d_width": 4, "d_layers": 1, "n_blocks": 0, "n_down": 1, "pool_size": 2, "lambda_identity": 0}),
], ids=["pix2pix", "cyclegan"])
def test_translators_train_compiled_with_both_penalties(family, kind, keys, params, aot_eager):
    recipe, logs = _train(family, "wgan-gp", 1.0, kind, keys, params)
    assert all(torch.isfinite(v).all() for step in logs for v in step.values())
    assert float(logs[-1]["penalty"]) > 0


def test_eager_penalty_forward_keeps_the_compiled_graph(aot_eager):
    """The penalty's eager forward neither recompiles D nor changes what the step computes."""
    params = {"g_width": 4, "d_width": 4, "d_norm": "none"}
    recipe, logs = _train("dcgan", "wgan-gp", 1.0, "images", ("image",), params)
    graphs = aot_eager["stats"]["unique_graphs"]
    recipe.train_step(_images(4, 1, 8, "image"), 3)
    assert aot_eager["stats"]["unique_graphs"] == graphs  # no recompilation after step 2
    plain, plain_logs = _train("dcgan", "wgan-gp", 1.0, "images", ("image",), params, compile=False)
    for k in ("loss_d", "loss_g", "penalty"):
        torch.testing.assert_close(logs[-1][k], plain_logs[-1][k], rtol=1e-4, atol=1e-5)
