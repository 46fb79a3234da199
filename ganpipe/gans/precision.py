"""`train.amp`: the autocast dtype a recipe trains in, and fp16's gradient scalers.

bf16 has float32's exponent range, so its gradients need no scaling. fp16 (for GPUs without
bf16, e.g. V100 or T4) underflows small gradients, so each optimizer gets a
`torch.amp.GradScaler`: the loss is scaled before backward, the gradients unscaled before
clipping or the non-finite check, and a step with inf/NaN gradients is skipped while the scale
backs off. Penalties that differentiate D's output with respect to its input (WGAN-GP, R1)
scale that inner gradient too (`input_grad_scale`), as PyTorch's AMP notes advise.

The dtype is checked against the device when training starts: bf16 on a CUDA GPU without it
is an error naming fp16, rather than a silent change of what the run computes. On CPU both
run (autocast covers fewer ops in fp16, and CPUs without native bf16/fp16 are slower than
float32); they are there for tests and for CPUs with AMX/AVX512-BF16.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import Tensor

from ganpipe.errors import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_device(amp: str, device: torch.device) -> None:
    """Raise `ConfigError` when `device` cannot autocast to `amp`'s dtype."""
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise ConfigError(f"train.amp=bf16, but {name} has no bf16 support", hint="set train.amp=fp16 (or off)")


class Precision:
    """Autocast and, for fp16, one gradient scaler per optimizer (created on first use)."""

    def __init__(self, amp: str, device: torch.device):
        check_device(amp, device)
        self.amp, self.device = amp, device
        self.dtype = DTYPES.get(amp)
        self._scalers: dict[int, torch.amp.GradScaler] = {}

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(self.device.type, dtype=self.dtype or torch.bfloat16, enabled=self.dtype is not None)

    def scaler(self, opt: torch.optim.Optimizer) -> torch.amp.GradScaler | None:
        if self.amp != "fp16":
            return None
        s = self._scalers.get(id(opt))
        if s is None:
            s = self._scalers[id(opt)] = torch.amp.GradScaler(self.device.type)
        return s

    def input_grad_scale(self, opt: torch.optim.Optimizer) -> Tensor | None:
        """The scale (a device tensor: no host sync) for a penalty's inner gradient, or None."""
        s = self.scaler(opt)
        return None if s is None else s.scale(torch.ones((), device=self.device))

    def scaled(self, opt: torch.optim.Optimizer, loss: Tensor) -> Tensor:
        """What to call backward on: the loss, scaled for fp16 (the gradients are unscaled
        before clipping and the step; averaging them over ranks commutes with the scale)."""
        s = self.scaler(opt)
        return loss if s is None else s.scale(loss)

    def backward(self, opt: torch.optim.Optimizer, loss: Tensor) -> None:
        self.scaled(opt, loss).backward()

    def unscale(self, opt: torch.optim.Optimizer) -> None:
        s = self.scaler(opt)
        if s is not None:
            s.unscale_(opt)

    def step(self, opt: torch.optim.Optimizer) -> None:
        """The optimizer step (a scaler skips it when the gradients are not finite)."""
        s = self.scaler(opt)
        if s is None:
            opt.step()
            return
        s.step(opt)
        s.update()

    def skip(self, opt: torch.optim.Optimizer) -> None:
        """A step the caller skips after `unscale`: the scaler still backs off."""
        s = self.scaler(opt)
        if s is not None:
            s.update()

    def state_dict(self, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, dict]:
        return {k: s.state_dict() for k, o in optimizers.items() if (s := self.scaler(o)) is not None}

    def load_state_dict(self, state: dict[str, dict], optimizers: dict[str, torch.optim.Optimizer]) -> None:
        for k, o in optimizers.items():
            s = self.scaler(o)
            if s is not None and k in state:
                s.load_state_dict(state[k])
