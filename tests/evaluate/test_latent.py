"""Latent walks, class grids, truncation sweeps and their figures on tiny untrained generators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganpipe.data.loading import load_manifest
from ganpipe.errors import ConfigError
from ganpipe.evaluate import figures as plots
from ganpipe.evaluate import latent
from ganpipe.evaluate.metrics import EvalContext
from ganpipe.gans.base import sampler_from_export

STEPS = 7


def tiny(family: str, **extra) -> object:
    """An untrained sampler of a family, rebuilt through the export path a registered model uses."""
    from ganpipe.gans.base import SAMPLERS

    params = {
        "dcgan": {"g_width": 4, "d_width": 4, "d_norm": "batch"},
        "cgan": {"g_width": 4, "d_width": 4, "d_norm": "batch"},
        "biggan": {"g_ch": 2, "d_ch": 2, "shared_dim": 8, "attn_res": 0, "ema_decay": 0.0, "ortho_reg": 0.0},
    }[family]
    spec = {"family": family, "z_dim": 20, "channels": 1, "image_size": 16, "num_classes": 10 if family != "dcgan" else 0, "params": params, **extra}
    torch.manual_seed(0)
    g = SAMPLERS.get(family).build_generator(spec)
    return sampler_from_export(spec, g.state_dict())


def test_slerp_keeps_endpoints_and_the_shell():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 64, generator=g), torch.randn(3, 64, generator=g)
    path = latent.slerp(a, b, torch.linspace(0, 1, 5))
    assert path.shape == (5, 3, 64)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    # Midpoints stay near the Gaussian shell (norm ~ sqrt(d)); linear midpoints shrink to ~0.7 of it.
    assert path[2].norm(dim=1).min() > 0.9 * min(a.norm(dim=1).min(), b.norm(dim=1).min())
    same = latent.slerp(a, a, torch.tensor([0.5]))  # parallel: no division by zero
    torch.testing.assert_close(same[0], a)


def test_interpolation_walk_shapes_endpoints_and_determinism():
    s = tiny("dcgan")
    walk = latent.interpolation_walk(s, steps=6, rows=3, seed=4)
    assert walk.shape == (3, 6, 1, 16, 16) and walk.abs().max() <= 1
    ends = torch.randn(2, 3, 20, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(walk[:, 0], latent.decode(s, ends[0]))
    torch.testing.assert_close(walk[:, -1], latent.decode(s, ends[1]))
    torch.testing.assert_close(walk, latent.interpolation_walk(s, steps=6, rows=3, seed=4))
    assert not torch.allclose(walk[:, 0], walk[:, -1])


def test_conditional_walk_holds_the_label_per_row():
    s = tiny("cgan")
    seen = []
    real_g = s.generator
    s.generator = lambda z, y: (seen.append(y.clone()), real_g(z, y))[1]
    latent.interpolation_walk(s, steps=5, rows=4, seed=0)
    assert seen[0].tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5


def test_walks_use_a_z_keyword_when_the_sampler_has_one():
    s = tiny("dcgan")
    calls = []

    class WithZ(type(s)):
        def generate(self, n, seed=0, labels=None, inputs=None, z=None, **kw):
            calls.append(z.shape)
            return self.generator(z)

    s.__class__ = WithZ
    latent.interpolation_walk(s, steps=3, rows=2)
    assert calls == [torch.Size([6, 20])]


def test_generators_without_a_latent_get_a_clear_error():
    s = tiny("dcgan")
    s.spec = {**s.spec, "family": "pix2pix", "z_dim": 0}
    with pytest.raises(ConfigError, match="no image-producing latent"):
        latent.interpolation_walk(s)


def test_class_grid_rows_are_classes():
    grid = latent.class_grid(tiny("cgan"), per_class=3)
    assert grid.shape == (10, 3, 1, 16, 16)
    with pytest.raises(ConfigError):
        latent.class_grid(tiny("dcgan"))


def _seeded_ctx(sampler, data: Path, cache: Path) -> EvalContext:
    from ganpipe.evaluate.classifier import SmallClassifier

    m = load_manifest(data)
    torch.manual_seed(0)
    folder = cache / "classifiers"
    folder.mkdir(parents=True, exist_ok=True)
    key = f"{m['fingerprint'][:16]}-s{STEPS}-seed0"
    torch.save(SmallClassifier(m["channels"], m["num_classes"]).state_dict(), folder / f"{key}.pt")
    (folder / f"{key}.json").write_text(json.dumps({"test_accuracy": 0.0}))
    return EvalContext(sampler, data, cache, num_samples=60, seed=0, classifier_steps=STEPS)


def test_truncation_sweep_rows_and_plot(digits_prepared, tmp_path):
    s = tiny("biggan")
    ctx = _seeded_ctx(s, digits_prepared, tmp_path)
    rows = latent.truncation_sweep(s, [0.5, 1.0, 2.0], ctx)
    assert [r["truncation"] for r in rows] == [0.5, 1.0, 2.0]
    for r in rows:
        assert set(r) == {"truncation", "fcd", "confidence", "diversity"}
        assert r["fcd"] >= 0 and 0 < r["confidence"] <= 1 and r["diversity"] >= 0
    png = plots.to_png(plots.truncation_sweep(rows))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="no truncation"):
        latent.truncation_sweep(tiny("dcgan"), [1.0], ctx)


def test_curves_group_losses_and_floors():
    history = {
        "loss_d": [(10, 1.2), (20, 1.0)],
        "loss_g": [(10, 0.7), (20, 0.9)],
        "eval.fcd": [(20, 30.0)],
        "eval.fcd_floor": [(20, 2.0)],
        "empty": [],
    }
    fig = plots.curves(history)
    titles = sorted(ax.get_title() for ax in fig.axes)
    assert titles == ["eval.fcd", "loss"]
    assert plots.to_png(fig)[:4] == b"\x89PNG"
    assert plots.to_png(plots.curves({}))[:4] == b"\x89PNG"


def test_eval_figures_for_a_conditional_truncatable_generator(digits_prepared, tmp_path):
    """Every figure that applies to a BigGAN is made, and written for one upload."""
    from PIL import Image

    from ganpipe.evaluate.figures import TRUNCATIONS, make_figures, write_artifact

    uploaded = tmp_path / "uploaded"
    s = tiny("biggan")
    ctx = _seeded_ctx(s, digits_prepared, tmp_path / "cache")
    history = {"loss_d": [(1, 1.0), (2, 0.9)], "loss_g": [(1, 0.5), (2, 0.6)]}
    artifacts, made = make_figures(s, ctx, history)
    for path, obj in artifacts.items():
        write_artifact(uploaded, path, obj)
    assert made == {
        "interpolation": "eval/interpolation.png",
        "class_grid": "eval/class_grid.png",
        "truncation_sweep": "eval/truncation_sweep.png",
        "truncation_sweep.json": "eval/truncation_sweep.json",
        "losses": "plots/losses.png",
    }
    for path in made.values():
        assert (uploaded / path).is_file()
    rows = json.loads((uploaded / "eval/truncation_sweep.json").read_text())["rows"]
    assert [r["truncation"] for r in rows] == list(TRUNCATIONS)
    side = (10 * (16 + 1) + 1) * 4  # 10 x 10 padded 16px images, shown 4x
    assert Image.open(uploaded / "eval/class_grid.png").size == (side, side)
