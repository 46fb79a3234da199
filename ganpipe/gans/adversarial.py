"""The shared unconditional/conditional adversarial update used by image GAN recipes.

Subclasses build G and D and say how a batch conditions them; this class runs `n_critic`
D steps (with the loss's penalty/clipping) and one G step. Pix2Pix and CycleGAN have their
own update rules and do not use it.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from ganpipe.gans.augment import diff_augment
from ganpipe.gans.base import Batch, NextBatch, Recipe, eager
from ganpipe.gans.optimizers import make_optimizer
from ganpipe.losses import LOSSES, clip_weights, gradient_penalty, r1_penalty


class AdversarialRecipe(Recipe):
    """n_critic D steps then one G step, for any registered loss."""

    G: nn.Module
    D: nn.Module

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.loss = LOSSES.get(self.cfg.loss.name)
        self.build()
        self.G, self.D = self.convert_batchnorm(self.G), self.convert_batchnorm(self.D)
        self.G.to(self.device)
        self.D.to(self.device)
        if self.cfg.train.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.sync.broadcast(self.G)
        self.sync.broadcast(self.D)
        self.compile_modules(self.G, self.D, multi_forward=(self.D,))  # D sees real, then fake
        o = self.cfg.optim
        self.opt_g = make_optimizer(self.G.parameters(), o.lr_g, o)
        self.opt_d = make_optimizer(self.D.parameters(), o.lr_d, o)

    # -- hooks -------------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def condition(self, batch: Batch) -> Tensor | None:
        """Conditioning taken from a real batch (labels) or None for unconditional GANs."""
        return None

    def random_condition(self, n: int) -> Tensor | None:
        return None

    def g_forward(self, z: Tensor, cond: Tensor | None) -> Tensor:
        return self.G(z)

    def d_forward(self, x: Tensor, cond: Tensor | None) -> Tensor:
        return self.D(x)

    def augment(self, x: Tensor) -> Tensor:
        """D's view of an image batch: `train.augment` (DiffAugment) on real and fake alike,
        in D's and G's steps; the identity when off."""
        policy = self.cfg.train.augment
        return diff_augment(x, policy) if policy else x

    def after_g_step(self) -> None:
        """E.g. EMA update of G's weights."""

    def lr_schedule(self) -> tuple[float, float]:
        """(lr_final, decay_start): both learning rates are held for the first `decay_start`
        of train.steps, then fall linearly to `lr_final` times their configured value at the
        last step. (1.0, 0.0), the default, keeps them constant."""
        return 1.0, 0.0

    def lr_factor(self, step: int) -> float:
        final, start = self.lr_schedule()
        if final == 1.0:
            return 1.0
        steps = self.cfg.train.steps
        hold = start * steps
        progress = min(max(step - hold, 0.0) / max(steps - hold, 1.0), 1.0)
        return 1.0 - (1.0 - final) * progress

    def _set_lr(self, step: int) -> None:
        """The learning rates for `step`, from the config's and the schedule's: a function of
        the step alone, so a resumed or PBT-mutated run follows the same curve."""
        f = self.lr_factor(step)
        if f == 1.0:
            return
        o = self.cfg.optim
        for opt, lr in ((self.opt_g, o.lr_g), (self.opt_d, o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * f

    @property
    def d_group(self) -> int:
        """Consecutive samples D scores as one input (PacGAN packing); penalties follow it."""
        return 1

    # -- update ------------------------------------------------------------------------
    def _z(self, n: int) -> Tensor:
        return torch.randn(n, self.cfg.model.z_dim, device=self.device)

    def _step(self, opt: torch.optim.Optimizer, module: nn.Module, loss: Tensor) -> None:
        prec = self.precision
        opt.zero_grad(set_to_none=True)
        self.sync.backward(prec.scaled(opt, loss), module)  # fp16: the scaled loss
        o = self.cfg.optim
        if o.grad_clip or o.skip_nonfinite:
            prec.unscale(opt)  # clip and check the true gradients
            # One fused norm; clipping with an infinite max is a no-op that still reports the norm.
            norm = torch.nn.utils.clip_grad_norm_(module.parameters(), o.grad_clip or float("inf"))
            if o.skip_nonfinite:
                ok = torch.isfinite(norm)
                self.skipped_steps = getattr(self, "skipped_steps", torch.zeros((), device=self.device)) + (~ok).float()
                if not bool(ok):  # a host sync, but only a scalar; skipping a bad update beats corrupting Adam's state
                    opt.zero_grad(set_to_none=True)
                    prec.skip(opt)  # fp16: the loss scale still backs off
                    return
        prec.step(opt)

    def train_step(self, next_batch: NextBatch, step: int) -> dict[str, Tensor]:
        lc = self.cfg.loss
        self._set_lr(step)
        self.D.requires_grad_(True)
        for _ in range(lc.n_critic):
            batch = next_batch()
            real = batch["image"]
            cond = self.condition(batch)
            n = real.shape[0]
            with torch.no_grad(), self.autocast():
                fake = self.g_forward(self._z(n), cond)
            r1 = lc.r1_weight > 0
            if r1:
                real = real.detach().requires_grad_(True)
            with self.autocast():
                with eager(self.D) if r1 else nullcontext():  # R1 differentiates D(real) twice
                    d_real = self.d_forward(self.augment(real), cond)
                d_fake = self.d_forward(self.augment(fake.to(real.dtype)), cond)
                loss_d = self.loss.d_loss(d_real, d_fake)
            penalty = torch.zeros((), device=self.device)
            scale = self.precision.input_grad_scale(self.opt_d)
            if self.loss.gradient_penalty:
                with eager(self.D):
                    penalty = lc.gp_weight * gradient_penalty(lambda x: self.d_forward(x, cond), real, fake.float(), group=self.d_group, scale=scale)
            if r1:
                penalty = penalty + 0.5 * lc.r1_weight * r1_penalty(d_real, real, group=self.d_group, scale=scale)
            self._step(self.opt_d, self.D, loss_d + penalty)
            if self.loss.weight_clip:
                clip_weights(self.D, lc.clip_value)

        self.D.requires_grad_(False)
        cond = self.random_condition(n) if cond is not None else None
        with self.autocast():
            fake = self.g_forward(self._z(n), cond)
            d_gen = self.d_forward(self.augment(fake), cond)
            loss_g = self.loss.g_loss(d_gen)
        self._step(self.opt_g, self.G, loss_g)
        self.after_g_step()
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "penalty": penalty.detach(),
            "d_real": d_real.detach().float().mean(),
            "d_fake": d_fake.detach().float().mean(),
            "fake_std": fake.detach().float().std(dim=0).mean(),
            "skipped_steps": getattr(self, "skipped_steps", torch.zeros(())).detach(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        # The config's learning rates win over the checkpoint's (PBT mutates them on restore).
        for opt, lr in ((self.opt_g, self.cfg.optim.lr_g), (self.opt_d, self.cfg.optim.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}
