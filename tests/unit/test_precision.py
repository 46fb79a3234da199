"""`train.amp` (bf16 | fp16 | off; old true/false), fp16's gradient scalers, the device check,
and the CUDA backend flags training sets (`train.cudnn_benchmark`, `train.tf32`)."""

from __future__ import annotations

import pytest
import torch

from ganpipe.config import build_config, load_config
from ganpipe.errors import ConfigError
from ganpipe.gans import FAMILIES, DataInfo
from ganpipe.gans.precision import Precision
from ganpipe.train.host import set_backend_flags

CPU = torch.device("cpu")


def test_amp_values_and_old_booleans():
    assert [load_config(None, [f"train.amp={v}"]).train.amp for v in ("bf16", "fp16", "off", "true", "false")] == ["bf16", "fp16", "off", "bf16", "off"]
    with pytest.raises(ConfigError, match="train.amp"):
        load_config(None, ["train.amp=fp8"])


def test_old_configs_keep_their_run_names():
    """Hashes computed by the release where amp was a bool and the backend flags did not exist."""
    assert build_config({}).fingerprint() == "2038da7ae7"
    assert build_config({"train": {"amp": True}}).fingerprint() == "43610f7beb"
    assert build_config({"train": {"amp": "bf16"}}).fingerprint() == "43610f7beb"
    assert build_config({"train": {"amp": False, "compile": True}}).fingerprint() == "72fc04cc3a"
    new = {build_config({"train": t}).fingerprint() for t in ({"amp": "fp16"}, {"tf32": False}, {"cudnn_benchmark": False})}
    assert len(new) == 3 and "2038da7ae7" not in new  # new choices are new runs


def _dcgan(amp: str, **loss):
    cfg = build_config({
        "model": {"z_dim": 4, "params": {"g_width": 4, "d_width": 4, "d_norm": "none"}},
        "loss": {"name": "wgan-gp", "r1_weight": 1.0, **loss},
        "optim": {"grad_clip": 1.0, "skip_nonfinite": True},
        "train": {"batch_size": 4, "amp": amp},
    })
    torch.manual_seed(0)
    return FAMILIES.get("dcgan")(cfg, DataInfo(image_size=8, channels=1), CPU)


def _batches():
    g = torch.Generator().manual_seed(0)
    return lambda: {"image": torch.rand(4, 1, 8, 8, generator=g) * 2 - 1}


@pytest.mark.parametrize("amp", ["fp16", "bf16", "off"])
def test_amp_modes_train_on_cpu(amp):
    recipe = _dcgan(amp)
    before = {k: v.clone() for k, v in recipe.G.state_dict().items()}
    batches = _batches()
    logs = [recipe.train_step(batches, s) for s in (1, 2, 3)]
    # fp16: the first loss scale (2^16) overflows the penalty's scaled inner gradient, so the
    # scaler skips that D step and halves the scale, as GradScaler is meant to.
    assert all(torch.isfinite(v).all() for step in logs for k, v in step.items() if k.startswith("loss"))
    assert all(torch.isfinite(v).all() for v in logs[-1].values())
    assert any(not torch.equal(before[k], v) for k, v in recipe.G.state_dict().items())
    scalers = recipe.state_dict()["scalers"]
    if amp == "fp16":
        # One scaler per optimizer; each scaled, unscaled (clip), stepped and updated every step.
        assert set(scalers) == {"G", "D"} and all(s["_growth_tracker"] >= 1 for s in scalers.values())
        other = _dcgan(amp)
        other.load_state_dict(recipe.state_dict())  # the loss scales resume with the run
        assert other.state_dict()["scalers"] == scalers
    else:
        assert scalers == {} and recipe.precision.scaler(recipe.opt_d) is None


def test_fp16_overflow_skips_the_step_and_backs_off():
    recipe = _dcgan("fp16", name="nonsaturating", r1_weight=0.0)
    batches = _batches()
    recipe.train_step(batches, 1)
    s = recipe.precision.scaler(recipe.opt_d)
    s.update(new_scale=float(torch.finfo(torch.float32).max))  # the scaled loss overflows
    d = {k: v.clone() for k, v in recipe.D.state_dict().items()}
    recipe.train_step(batches, 2)
    assert s.get_scale() < torch.finfo(torch.float32).max  # backed off
    assert all(torch.equal(d[k], v) for k, v in recipe.D.state_dict().items())  # D's update skipped
    assert float(recipe.skipped_steps) >= 1


def test_bf16_on_a_gpu_without_it_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla V100")
    with pytest.raises(ConfigError, match="V100 has no bf16") as e:
        Precision("bf16", torch.device("cuda"))
    assert "fp16" in e.value.hint
    Precision("fp16", torch.device("cuda"))  # fp16 needs no check


def test_backend_flags_are_set_by_set_backend_flags():
    old = (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    try:
        set_backend_flags(cudnn_benchmark=True, tf32=True)
        assert torch.backends.cudnn.benchmark and torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.fp32_precision == "tf32" and torch.get_float32_matmul_precision() == "high"
        set_backend_flags(cudnn_benchmark=False, tf32=False)
        assert not torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.fp32_precision == "ieee" and torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.backends.cudnn.benchmark = old[0]
        torch.set_float32_matmul_precision(old[1])
        torch.backends.cudnn.allow_tf32 = old[2]


def test_training_applies_the_flags_on_cuda_only(monkeypatch, digits_prepared):
    from ganpipe.train import loop

    calls = []
    monkeypatch.setattr(loop, "set_backend_flags", lambda *a: calls.append(a))
    cfg = build_config({"model": {"z_dim": 4, "params": {"g_width": 4, "d_width": 4}}, "train": {"steps": 1, "batch_size": 4, "tf32": False, "log_every": 1}})
    loop.run_training(cfg, digits_prepared, device=CPU)
    assert calls == []
    monkeypatch.setattr(loop, "build_recipe", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.raises(RuntimeError, match="stop"):
        loop.run_training(cfg, digits_prepared, device=torch.device("cuda"))
    assert calls == [(True, False)]
