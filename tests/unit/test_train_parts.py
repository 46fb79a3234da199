"""Per-step pieces rewritten for speed keep their results: BigGAN's EMA (fused foreach update),
CycleGAN's image pool (vectorised), the in-memory Batcher (indices kept on the device)."""

from __future__ import annotations

import pytest
import torch

from ganpipe.gans.ema import EMA
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


# -- CycleGAN's image pool ----------------------------------------------------------------------

def _sequential(pool: torch.Tensor, batch: torch.Tensor, swap: torch.Tensor, slot: torch.Tensor):
    """The rule image by image (the pool's old loop, with given draws)."""
    pool, out = pool.clone(), []
    for img, s, j in zip(batch, swap.tolist(), slot.tolist()):
        if s:
            out.append(pool[j].clone())
            pool[j] = img
        else:
            out.append(img)
    return torch.stack(out), pool


def test_pool_swap_equals_the_sequential_rule_even_with_repeated_slots():
    from ganpipe.gans.cyclegan import swap_into_pool

    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        size, m = int(torch.randint(1, 5, (), generator=g)), int(torch.randint(1, 9, (), generator=g))
        pool, batch = torch.randn(size, 2, 3, 3, generator=g), torch.randn(m, 2, 3, 3, generator=g)
        swap = torch.rand(m, generator=g) < 0.5
        slot = torch.randint(size, (m,), generator=g)  # small pools: slots repeat within a batch
        out, new = swap_into_pool(pool, batch, swap, slot)
        want_out, want_pool = _sequential(pool, batch, swap, slot)
        assert torch.equal(out, want_out) and torch.equal(new, want_pool)


def test_pool_fills_then_swaps_half_with_uniform_slots():
    from ganpipe.gans.cyclegan import ImagePool

    pool = ImagePool(4, generator=torch.Generator().manual_seed(0))
    first = torch.arange(6.0).reshape(6, 1, 1, 1)
    out = pool.query(first)  # 4 fill the pool and pass through; 2 meet a full pool
    assert torch.equal(out[:4], first[:4]) and len(pool.images) == 4
    swapped, slots = 0, torch.zeros(4)
    trials = 2000
    for t in range(trials):
        before = pool.images.clone()
        x = torch.full((1, 1, 1, 1), 100.0 + t)
        y = pool.query(x)
        if not torch.equal(y, x):
            swapped += 1
            j = int((before.flatten() == y.flatten()).nonzero())  # it came from slot j ...
            assert pool.images.flatten()[j] == x.flatten()  # ... and x took its place
            slots[j] += 1
        else:
            assert torch.equal(pool.images, before)
    assert abs(swapped / trials - 0.5) < 0.05
    assert (abs(slots / swapped - 0.25) < 0.05).all()
    # Seeded: the same generator seed gives the same history.
    a, b = ImagePool(3, torch.Generator().manual_seed(7)), ImagePool(3, torch.Generator().manual_seed(7))
    xs = [torch.randn(5, 1, 2, 2) for _ in range(4)]
    assert all(torch.equal(a.query(x), b.query(x)) for x in xs) and torch.equal(a.images, b.images)


# -- Batcher ------------------------------------------------------------------------------------

def test_batcher_sequence_is_unchanged_for_a_seed():
    """The batches of the in-memory Batcher as they were: a CPU-seeded permutation per epoch."""
    from ganpipe.train.loop import Batcher

    data = {"image": torch.randn(23, 1, 2, 2), "label": torch.arange(23)}
    b = Batcher(data, 5, seed=3, device=CPU)
    gen = torch.Generator().manual_seed(3)
    perm, pos = torch.randperm(23, generator=gen), 0
    for _ in range(20):  # several epochs (23 // 5 batches each, the remainder dropped)
        if pos + 5 > 23:
            perm, pos = torch.randperm(23, generator=gen), 0
        idx, pos = perm[pos : pos + 5], pos + 5
        got = b()
        assert torch.equal(got["label"], idx) and torch.equal(got["image"], data["image"][idx])


def test_batcher_indices_live_with_the_data():
    """No index copy per batch: the permutation is on the data's device (meta stands in for an
    accelerator here; on CUDA each epoch's permutation is one non-blocking copy from pinned memory)."""
    from ganpipe.train.loop import Batcher

    meta = torch.device("meta")
    b = Batcher({"image": torch.randn(40, 1, 2, 2)}, 8, seed=0, device=meta)
    assert b.perm.device == meta
    for _ in range(7):  # across an epoch boundary
        assert b()["image"].device == meta and b.perm.device == meta
