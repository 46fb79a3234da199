"""Every family's generator survives the trip checkpoint -> MLflow model -> pyfunc/sampler,
and its preview grid works (translators preview real inputs)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO
from ganpipe.config import load_config
from ganpipe.gans import FAMILIES, DataInfo

KINDS = {"pix2pix": "paired", "cyclegan": "unpaired", "toy": "points"}
CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml"))
# The high-resolution configs at a quarter of their widths: the same layers (attention at
# 64 px included), at a cost that fits the fast tier.
NARROW = {"biggan-128": ["model.params.g_ch=8", "model.params.d_ch=8"], "dcgan-64": ["model.params.g_width=16", "model.params.d_width=16"]}


def _info(cfg) -> DataInfo:
    kind = KINDS.get(cfg.model.family, "images")
    if kind == "points":
        return DataInfo(kind="points", image_size=0, channels=0, num_classes=0, extra={"centers": [[0.0, 0.0]], "std": 0.1})
    ch = 3 if kind in ("paired", "unpaired") else (cfg.data.channels or 1)
    classes = 10 if cfg.model.family in ("cgan", "biggan") else 0
    return DataInfo(kind=kind, image_size=cfg.data.image_size, channels=ch, num_classes=classes, class_names=tuple(str(i) for i in range(classes)))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_export_log_load_generate(config, tmp_path):
    from ganpipe.project import Project
    from ganpipe.tracking.pyfunc import load_sampler, log_generator
    from ganpipe.tracking.runs import ensure_experiment
    from ganpipe.train.checkpoint import save_checkpoint

    cfg = load_config(config, NARROW.get(config.stem, []))
    info = _info(cfg)
    torch.manual_seed(0)
    recipe = FAMILIES.get(cfg.model.family)(cfg, info, torch.device("cpu"))
    ck = save_checkpoint(tmp_path / "ck", step=1, recipe_state=recipe.state_dict(), export=recipe.export(), config=cfg.to_dict())
    store = Project.load(tmp_path, env={}).store
    rid = store.client().create_run(ensure_experiment(store, "export")).info.run_id
    uri = log_generator(store, rid, ck)
    sampler = load_sampler(store, uri)
    assert sampler.spec["family"] == cfg.model.family
    inputs = None
    if sampler.needs_inputs:
        inputs = torch.rand(3, sampler.spec.get("in_channels", info.channels), info.image_size, info.image_size) * 2 - 1
    out = sampler.generate(3, seed=5, **({"inputs": inputs} if inputs is not None else {}))
    again = recipe.sampler().generate(3, seed=5, **({"inputs": inputs} if inputs is not None else {}))
    assert torch.allclose(out, again, atol=1e-5)  # the registered model is the trained generator
    if sampler.output_kind == "points":
        assert out.shape == (3, 2)
    else:
        assert out.shape[0] == 3 and out.shape[-1] == info.image_size and out.min() >= -1 and out.max() <= 1
        prev = sampler.preview(8, seed=0, real={"image": inputs} if inputs is not None else None)
        assert prev.shape[0] in (6, 8)
    # the pyfunc itself, as `mlflow models serve` would call it
    import mlflow.pyfunc

    row = {"n": [3], "seed": [5]}
    if inputs is not None:
        row["inputs"] = [inputs[0].flatten().tolist()]
    with store.active():
        pred = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame(row))
    assert isinstance(pred, np.ndarray) and pred.shape[0] == 3 and np.isfinite(pred).all()
