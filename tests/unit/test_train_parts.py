"""Per-step pieces rewritten for speed keep their results: BigGAN's EMA (fused foreach update),
CycleGAN's image pool (vectorised), the in-memory Batcher (indices kept on the device)."""

from __future__ import annotations

import pytest
import torch

from ganpipe.gans.biggan import EMA
from ganpipe.models.biggan import BigGANGenerator

CPU = torch.device("cpu")


def _old_ema_update(ema: EMA) -> None:
    """The update as it was: walk both state dicts every G step."""
    ema.updates += 1
    d = min(ema.decay, (1 + ema.updates) / (10 + ema.updates))
    src = ema.source.state_dict()
    with torch.no_grad():
        for name, t in ema.target.state_dict().items():
            if t.is_floating_point() and not name.endswith(("_u", "_v")):
                t.lerp_(src[name], 1.0 - d)
            else:
                t.copy_(src[name])


def _gen() -> BigGANGenerator:
    return BigGANGenerator(12, 1, 16, 10, 2, 4, 8)  # spectral norm (_u/_v), conditional BN stats, attention


def test_ema_update_matches_the_state_dict_walk_without_walking_it(monkeypatch):
    torch.manual_seed(0)
    src, new_t, old_t = _gen(), _gen(), _gen()
    new, old = EMA(src, new_t, 0.999), EMA(src, old_t, 0.999)
    monkeypatch.setattr(src, "state_dict", lambda *a, **k: pytest.fail("EMA.update walked the source's state_dict"))
    g = torch.Generator().manual_seed(1)
    for _ in range(12):
        with torch.no_grad():  # a training step: weights, BN statistics, SN vectors, counters move
            for t in list(src.parameters()) + list(src.buffers()):
                t.add_(torch.randn(t.shape, generator=g).to(t.dtype) if t.is_floating_point() else 1)
        new.update()
        monkeypatch.undo()
        _old_ema_update(old)
        monkeypatch.setattr(src, "state_dict", lambda *a, **k: pytest.fail("EMA.update walked the source's state_dict"))
    monkeypatch.undo()
    a, b = new_t.state_dict(), old_t.state_dict()
    assert a.keys() == b.keys() and any(k.endswith("_u") for k in a) and any("running_mean" in k for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-6, msg=k)
    assert not torch.equal(a[next(k for k in a if k.endswith("_u"))], torch.zeros(()))


def test_ema_survives_a_checkpoint_load():
    """`load_state_dict` copies in place: the pairs EMA made at construction stay the live tensors."""
    torch.manual_seed(0)
    src, tgt, other = _gen(), _gen(), _gen()
    ema = EMA(src, tgt, 0.0)  # decay 0: the average is the current weights
    src.load_state_dict(other.state_dict())
    tgt.load_state_dict(_gen().state_dict())
    ema.update()
    td, od = tgt.state_dict(), other.state_dict()
    assert all(torch.equal(td[k], od[k]) for k in od)
