"""Exponential moving average of a generator's weights (Karras et al. 2018; Yazici et al. 2019):
the averaged copy is what families with `ema_decay` export and sample from."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMA:
    """Exponential moving average of a module's parameters and BatchNorm statistics.

    For the first `start` updates the target copies the source (BigGAN-PyTorch's `ema_start`:
    early weights are not worth averaging); after that the decay is warmed up as
    min(decay, (1 + t) / (10 + t)), t counted from `start`, so short runs do not export a
    generator stuck near where averaging began. Spectral-norm power-iteration vectors and
    counters are copied, since they belong to the current weights rather than to an average.

    The tensors are paired once (by state_dict name) and updated with one fused
    `torch._foreach_lerp_` and one `_foreach_copy_` per G step, instead of walking both state
    dicts and launching a kernel per tensor (`load_state_dict` copies in place, so the pairs
    stay valid across checkpoint loads).
    """

    def __init__(self, source: nn.Module, target: nn.Module, decay: float, start: int = 0):
        self.source, self.target, self.decay, self.start = source, target, decay, start
        self.updates = 0
        self.target.load_state_dict(source.state_dict())
        self.target.requires_grad_(False)
        src, tgt = _tensors(source), _tensors(target)
        averaged = [n for n, t in tgt.items() if t.is_floating_point() and not n.endswith(("_u", "_v"))]
        copied = [n for n in tgt if n not in set(averaged)]
        self._avg = ([tgt[n] for n in averaged], [src[n] for n in averaged])
        self._copy = ([tgt[n] for n in copied], [src[n] for n in copied])

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        t = self.updates - self.start
        d = 0.0 if t <= 0 else min(self.decay, (1 + t) / (10 + t))
        if self._avg[0]:
            torch._foreach_lerp_(self._avg[0], self._avg[1], 1.0 - d)
        if self._copy[0]:
            torch._foreach_copy_(self._copy[0], self._copy[1])


def _tensors(module: nn.Module) -> dict[str, Tensor]:
    """A module's parameters and persistent buffers by state_dict name (the live tensors)."""
    out: dict[str, Tensor] = {}
    for prefix, m in module.named_modules():
        dot = f"{prefix}." if prefix else ""
        for n, p in m._parameters.items():
            if p is not None:
                out[dot + n] = p
        for n, b in m._buffers.items():
            if b is not None and n not in m._non_persistent_buffers_set:
                out[dot + n] = b
    if out.keys() != module.state_dict().keys():  # a module with a custom state_dict
        raise ValueError(f"EMA cannot pair the tensors of {type(module).__name__}: its state_dict has other keys")
    return out
