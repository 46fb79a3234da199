"""CycleGAN recipe (Zhu et al. 2017): unpaired translation between image domains A and B.

Two generators G_AB, G_BA and two PatchGAN discriminators D_A, D_B. Without pairs, the
adversarial losses only say "looks like the other domain"; the cycle loss
lambda * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|) ties each output to its input, and the
identity loss 0.5 * lambda * (|G_AB(b) - b| + |G_BA(a) - a|) keeps colours/tones that need not
change. As in the paper: LSGAN loss (set in the config), with G's adversarial term the plain
MSE to 1 (`G_LOSS_WEIGHTING`: the reference code's weight next to the cycle and identity
terms, twice that of the standalone `lsgan` G loss), lambda = 10, Adam(2e-4, 0.5), D
trained on a history of 50 generated images per direction (Shrivastava et al. 2017) so it does
not chase G's latest output, and the learning rate held, then decayed linearly to 0 over the
second half of training.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from ganpipe.gans.base import SAMPLERS, NextBatch, Recipe, Sampler, register_family
from ganpipe.gans.optimizers import make_optimizer
from ganpipe.gans.pix2pix import check_inputs, discriminator_loss, optimizer_step, translate
from ganpipe.losses import LOSSES, GLoss, clip_weights, lsgan_g_unhalved
from ganpipe.models.cyclegan import TranslatorPair, patch_discriminator

DIRECTIONS = ("AtoB", "BtoA")

# G's adversarial term where CycleGAN's reference (junyanz/pytorch-CycleGAN-and-pix2pix,
# GANLoss) weighs it differently from the standalone loss: its lsgan G term is MSE to 1, and
# with cycle and identity terms beside it the factor matters. Other losses use their own G loss.
G_LOSS_WEIGHTING: dict[str, GLoss] = {"lsgan": lsgan_g_unhalved}


class ImagePool:
    """History of generated images (Shrivastava et al. 2017): each incoming image is either
    passed through, or (with probability 1/2 once the pool is full) swapped for a stored one.

    Vectorised over the batch, with the sequential rule's semantics: images that find the pool
    not yet full fill it and pass through; each later one draws (swap?, slot). A swap returns
    the slot's content as the images before it in the batch left it (an earlier image's swap
    into the same slot included) and leaves its own image there. The draws stay on the device:
    no host sync per image."""

    def __init__(self, size: int, generator: torch.Generator | None = None):
        self.size = size
        self.images: Tensor | None = None  # [<=size, C, H, W]
        self.generator = generator  # None: the global RNG of the images' device

    def query(self, batch: Tensor) -> Tensor:
        if self.size == 0:
            return batch
        batch = batch.detach()
        n = 0 if self.images is None else len(self.images)
        k = min(self.size - n, len(batch))  # images that fill the pool
        if k > 0:
            head = batch[:k].clone()
            self.images = head if self.images is None else torch.cat([self.images, head])
        rest = batch[k:]
        if len(rest) == 0:
            return batch
        m, dev = len(rest), batch.device
        swap = torch.rand(m, device=dev, generator=self.generator) < 0.5
        slot = torch.randint(self.size, (m,), device=dev, generator=self.generator)
        out, self.images = swap_into_pool(self.images, rest, swap, slot)
        return torch.cat([batch[:k], out]) if k else out

    def state(self) -> Tensor | None:
        return None if self.images is None else self.images.cpu()

    def load(self, images: Tensor | None, device: torch.device) -> None:
        self.images = None if images is None else images.to(device)


def swap_into_pool(pool: Tensor, batch: Tensor, swap: Tensor, slot: Tensor) -> tuple[Tensor, Tensor]:
    """Image i of `batch` (M x ...) with swap[i] takes pool[slot[i]] as it stands after images
    0..i-1 and leaves itself there; the others pass through. Returns (out, new pool): what a
    loop over i computes, in a few batched ops (an M x M comparison of slots)."""
    i = torch.arange(len(batch), device=batch.device)
    per_image = (-1,) + (1,) * (batch.dim() - 1)  # broadcast a per-image flag over C, H, W
    same = (slot[:, None] == slot[None, :]) & swap[:, None] & swap[None, :]  # [M, M]
    # The latest earlier swap into i's slot, else -1: i takes that image, else the pool's.
    prev = torch.where(same & (i[None, :] < i[:, None]), i[None, :], -1).amax(1)
    taken = torch.where((prev >= 0).reshape(per_image), batch[prev.clamp(min=0)], pool[slot])
    out = torch.where(swap.reshape(per_image), taken, batch)
    # Each slot keeps the image of the last swap into it (a scatter-max: no host sync).
    writer = torch.full((len(pool),), -1, dtype=torch.long, device=batch.device)
    writer.scatter_reduce_(0, slot, torch.where(swap, i, -1), reduce="amax")
    new = torch.where((writer >= 0).reshape(per_image), batch[writer.clamp(min=0)], pool)
    return out, new


class CycleGANSampler(Sampler):
    needs_inputs = True
    @staticmethod
    def build_generator(spec: dict[str, Any]) -> nn.Module:
        p = spec["params"]
        return TranslatorPair(spec["channels"], p["g_width"], p["n_blocks"], p["n_down"])

    @torch.no_grad()
    def generate(
        self,
        n: int,
        seed: int = 0,
        labels: Tensor | None = None,
        inputs: Tensor | None = None,
        direction: str = "AtoB",
        **kw: Any,
    ) -> Tensor:
        """Translate `inputs` (cycled to n rows) with G_AB (direction="AtoB") or G_BA ("BtoA")."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        s = self.spec
        x = check_inputs(inputs, n, s["channels"], s["image_size"], "cyclegan")
        g = self.generator.G_AB if direction == "AtoB" else self.generator.G_BA
        return translate(g, x, self.device)


@register_family("cyclegan")
class CycleGANRecipe(Recipe):
    sampler_cls = CycleGANSampler

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        p, c = self.params, self.info.channels
        self.loss = LOSSES.get(self.cfg.loss.name)
        self.g_adv = G_LOSS_WEIGHTING.get(self.cfg.loss.name, self.loss.g_loss)
        self.G = TranslatorPair(c, p.g_width, p.n_blocks, p.n_down).to(self.device)
        self.D_A = patch_discriminator(c, p.d_width, p.d_layers).to(self.device)  # real A vs G_BA(b)
        self.D_B = patch_discriminator(c, p.d_width, p.d_layers).to(self.device)  # real B vs G_AB(a)
        for m in (self.G, self.D_A, self.D_B):
            if self.cfg.train.channels_last:
                m.to(memory_format=torch.channels_last)
            self.sync.broadcast(m)
        self.compile_modules(self.G.G_AB, self.G.G_BA, self.D_A, self.D_B)  # the modules train_step calls
        o = self.cfg.optim
        self.opt_g = make_optimizer(self.G.parameters(), o.lr_g, o)
        self.opt_d = make_optimizer(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), o.lr_d, o)
        steps, hold = self.cfg.train.steps, int(round(p.decay_start * self.cfg.train.steps))

        def factor(t: int) -> float:  # t = G steps done; 1 until `hold`, then linearly to 0 at `steps`
            return 1.0 if t < hold else max(0.0, (steps - t) / max(steps - hold, 1))

        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, factor)
        self.pool_a, self.pool_b = ImagePool(p.pool_size), ImagePool(p.pool_size)

    def train_step(self, next_batch: NextBatch, step: int) -> dict[str, Tensor]:
        p, lc = self.params, self.cfg.loss
        batch = next_batch()
        a, b = batch["image"], batch["image_b"]  # [N, C, S, S] each, unrelated rows
        G_AB, G_BA = self.G.G_AB, self.G.G_BA

        # G step: both generators together (D frozen).
        self.D_A.requires_grad_(False)
        self.D_B.requires_grad_(False)
        with self.autocast():
            fake_b, fake_a = G_AB(a), G_BA(b)
            rec_a, rec_b = G_BA(fake_b), G_AB(fake_a)
            loss_adv = self.g_adv(self.D_B(fake_b)) + self.g_adv(self.D_A(fake_a))
            loss_cycle = _l1(rec_a, a) + _l1(rec_b, b)
            loss_g = loss_adv + p.lambda_cycle * loss_cycle
            loss_idt = torch.zeros((), device=self.device)
            if p.lambda_identity > 0:
                loss_idt = _l1(G_AB(b), b) + _l1(G_BA(a), a)
                loss_g = loss_g + p.lambda_identity * p.lambda_cycle * loss_idt
        optimizer_step(self.opt_g, [self.G], loss_g, self.sync, self.cfg.optim.grad_clip, self.precision)

        # D step: each D on real images vs a draw from its history pool.
        self.D_A.requires_grad_(True)
        self.D_B.requires_grad_(True)
        scale = self.precision.input_grad_scale(self.opt_d)
        with self.autocast():
            loss_da, pen_a, da_real, da_fake = discriminator_loss(self.loss, self.D_A, a, self.pool_a.query(fake_a), lc, self.D_A, scale)
            loss_db, pen_b, db_real, db_fake = discriminator_loss(self.loss, self.D_B, b, self.pool_b.query(fake_b), lc, self.D_B, scale)
            loss_d = loss_da + loss_db
            penalty = pen_a + pen_b
        optimizer_step(self.opt_d, [self.D_A, self.D_B], loss_d + penalty, self.sync, self.cfg.optim.grad_clip, self.precision)
        if self.loss.weight_clip:
            clip_weights(self.D_A, lc.clip_value)
            clip_weights(self.D_B, lc.clip_value)
        lr = torch.tensor(self.opt_g.param_groups[0]["lr"])
        self.sched_g.step()
        self.sched_d.step()
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "loss_g_adv": loss_adv.detach(),
            "loss_cycle": loss_cycle.detach(),
            "loss_identity": loss_idt.detach(),
            "penalty": penalty.detach(),
            "d_real": 0.5 * (da_real.detach().float().mean() + db_real.detach().float().mean()),
            "d_fake": 0.5 * (da_fake.detach().float().mean() + db_fake.detach().float().mean()),
            "fake_std": fake_b.detach().float().std(dim=0).mean(),
            "lr_g": lr,
        }

    def modules(self) -> dict[str, nn.Module]:
        return {"G_AB": self.G.G_AB, "G_BA": self.G.G_BA, "D_A": self.D_A, "D_B": self.D_B}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def extra_state(self) -> dict[str, Any]:
        return {
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "pool_a": self.pool_a.state(),
            "pool_b": self.pool_b.state(),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "sched_g" in state:
            self.sched_g.load_state_dict(state["sched_g"])
            self.sched_d.load_state_dict(state["sched_d"])
        self.pool_a.load(state.get("pool_a"), self.device)
        self.pool_b.load(state.get("pool_b"), self.device)

    def export(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        spec = {
            "family": "cyclegan",
            "output_kind": "images",
            "z_dim": 0,
            "channels": self.info.channels,
            "in_channels": self.info.channels,
            "out_channels": self.info.channels,
            "image_size": self.info.image_size,
            "num_classes": 0,
            "directions": list(DIRECTIONS),
            "params": self.params.model_dump(),
        }
        return spec, self.G.state_dict()  # keys G_AB.* and G_BA.*


def _l1(x: Tensor, y: Tensor) -> Tensor:
    return (x.float() - y.float()).abs().mean()


SAMPLERS.add("cyclegan", CycleGANSampler)
