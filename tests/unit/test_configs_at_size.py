"""The higher-resolution configs train on any image folder: data.source from the command line,
a tiny folder made here (odd sizes, a bad file that data.on_bad_file=skip leaves out), a few
steps of the real loop at the config's resolution with narrow networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from ganpipe.config import load_config
from ganpipe.data.loading import load_manifest
from ganpipe.data.prepare import prepare
from ganpipe.train.loop import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "dcgan-64": ["model.params.g_width=4", "model.params.d_width=4"],
    "biggan-128": ["model.params.g_ch=2", "model.params.d_ch=2", "model.params.shared_dim=4", "model.params.attn_res=0", "loss.n_critic=1"],
}


@pytest.mark.parametrize("name, size", [("dcgan-64", 64), ("biggan-128", 128)])
def test_config_trains_on_an_image_folder_from_the_command_line(tmp_path, name, size):
    root = tmp_path / "my images"
    rng = np.random.default_rng(0)
    for i in range(10):
        d = root / ("cats" if i % 2 else "dogs")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40 + 7 * i, 90 - 3 * i, 3), dtype=np.uint8)).save(d / f"{i}.{'png' if i % 3 else 'jpg'}")
    (root / "cats" / "oops.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    overrides = [f"data.source=imagefolder:{root}", "data.val_fraction=0.0", "data.test_fraction=0.0", "train.steps=2", "train.batch_size=4",
                 "train.log_every=1", "train.checkpoint_every=2", "train.sample_every=100", *TINY[name]]  # fmt: skip
    cfg = load_config(REPO / "configs" / f"{name}.yaml", overrides)
    assert cfg.data.image_size == size and cfg.data.key == "my-images"
    m = prepare(cfg.data.source, tmp_path / "prepared", cfg.data)
    assert (m["image_size"], m["channels"], m["num_classes"], m["counts"]["train"]) == (size, 3, 2, 10)
    assert [s["file"].rsplit("/", 1)[-1] for s in load_manifest(tmp_path / "prepared")["skipped"]] == ["oops.jpg"]
    result = run_training(cfg, tmp_path / "prepared")
    assert result.step == 2 and len(result.history) == 2
    assert all(math.isfinite(v) for h in result.history for k, v in h.items() if k.startswith("loss"))
    fake = result.recipe.sampler().generate(2, seed=0)
    assert tuple(fake.shape) == (2, 3, size, size)
