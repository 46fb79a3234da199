"""BigGAN-style networks (Brock et al. 2019) for square images of size 4 * 2^k.

G: hierarchical z (one chunk for the 4x4 projection, one per block) and a shared class
embedding; each residual up-block gets [z chunk, embedding] and turns it into per-channel
BatchNorm gains and biases (conditional BN). D: residual down-blocks, global sum pooling and
a projection head (Miyato & Koyama 2018): logit = w.h + <embed(y), h>. Both use spectral
norm everywhere and a SAGAN self-attention block at one resolution (`attn_res`, 0 = off).
Widths follow BigGAN-128 (G 16ch..1ch, D 1ch..16ch) truncated to the number of stages.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ganpipe.specs.shapes import num_doublings

MAX_MULT = 16  # widest stage = 16 * ch, as in BigGAN-128


def _sn(module: nn.Module) -> nn.Module:
    """Orthogonal init (BigGAN's G_init/D_init 'ortho'), then spectral norm."""
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return spectral_norm(module)


def snconv(cin: int, cout: int, k: int = 3) -> nn.Module:
    return _sn(nn.Conv2d(cin, cout, k, 1, k // 2))


def snlinear(cin: int, cout: int, bias: bool = True) -> nn.Module:
    return _sn(nn.Linear(cin, cout, bias=bias))


def z_chunks(z_dim: int, n: int) -> list[int]:
    """Sizes of the hierarchical z chunks (the remainder goes to the first ones)."""
    if z_dim < n:
        raise ValueError(f"z_dim {z_dim} is smaller than the {n} chunks hierarchical z needs")
    return [z_dim // n + (1 if i < z_dim % n else 0) for i in range(n)]


def g_widths(image_size: int, ch: int) -> list[int]:
    """Channels from the 4x4 stage to the output stage, e.g. 32px, ch 32 -> [256, 128, 64, 32]."""
    k = num_doublings(image_size)
    return [ch * min(2 ** (k - i), MAX_MULT) for i in range(k)] + [ch]


def d_widths(image_size: int, ch: int) -> list[int]:
    """Output channels of D's down-blocks, e.g. 32px, ch 32 -> [32, 64, 128] (then one more at 4x4)."""
    k = num_doublings(image_size)
    return [ch * min(2**i, MAX_MULT) for i in range(k)]


def upsample2x(x: Tensor) -> Tensor:
    """Nearest-neighbour x2 upsampling as a broadcast copy (several times faster than
    F.interpolate on CPU); [N, C, H, W] -> [N, C, 2H, 2W]."""
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without affine parameters; gain (1 + .) and bias are linear in the condition."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = snlinear(cond_dim, channels, bias=False)
        self.bias = snlinear(cond_dim, channels, bias=False)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        # x: [N, C, H, W], c: [N, cond_dim]
        return self.bn(x) * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN attention (Zhang et al. 2019) with BigGAN's pooled keys/values; starts as identity."""

    def __init__(self, ch: int):
        super().__init__()
        self.theta = snconv(ch, max(ch // 8, 1), 1)
        self.phi = snconv(ch, max(ch // 8, 1), 1)
        self.g = snconv(ch, max(ch // 2, 1), 1)
        self.o = snconv(max(ch // 2, 1), ch, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [N, C/8, HW]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # [N, C/8, HW/4]
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # [N, C/2, HW/4]
        beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [N, HW, HW/4]
        o = (g @ beta.transpose(1, 2)).view(n, -1, h, w)  # [N, C/2, H, W]
        return x + self.gamma * self.o(o)


class GBlock(nn.Module):
    """CBN-ReLU-up-conv-CBN-ReLU-conv, plus an upsampled 1x1 skip."""

    def __init__(self, cin: int, cout: int, cond_dim: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, cond_dim)
        self.conv1 = snconv(cin, cout)
        self.bn2 = ConditionalBatchNorm2d(cout, cond_dim)
        self.conv2 = snconv(cout, cout)
        self.skip = snconv(cin, cout, 1)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        # x: [N, cin, S, S] -> [N, cout, 2S, 2S]
        h = upsample2x(F.relu(self.bn1(x, c)))
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.skip(upsample2x(x))


class DBlock(nn.Module):
    """(ReLU-)conv-ReLU-conv(-avgpool), plus a 1x1 skip; the first block skips the pre-activation."""

    def __init__(self, cin: int, cout: int, downsample: bool = True, preactivation: bool = True):
        super().__init__()
        self.conv1 = snconv(cin, cout)
        self.conv2 = snconv(cout, cout)
        self.skip = snconv(cin, cout, 1) if (cin != cout or downsample) else None
        self.downsample, self.preactivation = downsample, preactivation

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, cin, S, S] -> [N, cout, S/2, S/2] (or S when not downsampling)
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.skip is not None:
            if self.preactivation:  # BigGAN's shortcut order: conv-pool, or pool-conv in the first block
                s = self.skip(s)
                s = F.avg_pool2d(s, 2) if self.downsample else s
            else:
                s = F.avg_pool2d(s, 2) if self.downsample else s
                s = self.skip(s)
        return h + s


class BigGANGenerator(nn.Module):
    def __init__(
        self, z_dim: int, channels: int, image_size: int, num_classes: int, ch: int = 32, shared_dim: int = 128, attn_res: int = 0
    ):
        super().__init__()
        ws = g_widths(image_size, ch)
        k = len(ws) - 1
        self.z_dim, self.num_classes = z_dim, num_classes
        self.chunks = z_chunks(z_dim, k + 1)
        self.shared = nn.Embedding(num_classes, shared_dim)
        nn.init.orthogonal_(self.shared.weight)
        self.linear = snlinear(self.chunks[0], ws[0] * 16)
        self.blocks = nn.ModuleList(GBlock(ws[i], ws[i + 1], self.chunks[i + 1] + shared_dim) for i in range(k))
        # Attention after the block whose output has side attn_res.
        self.attn = nn.ModuleList(
            SelfAttention(ws[i + 1]) if 4 * 2 ** (i + 1) == attn_res else nn.Identity() for i in range(k)
        )
        self.out_bn = nn.BatchNorm2d(ws[-1])
        self.out_conv = snconv(ws[-1], channels)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        # z: [N, z_dim], y: [N] long -> [N, C, S, S] in [-1, 1]
        zs = torch.split(z, self.chunks, dim=1)
        e = self.shared(y)  # [N, shared_dim]
        h = self.linear(zs[0]).view(z.shape[0], -1, 4, 4)
        for block, attn, zc in zip(self.blocks, self.attn, zs[1:]):
            h = attn(block(h, torch.cat([zc, e], dim=1)))
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class BigGANDiscriminator(nn.Module):
    def __init__(self, channels: int, image_size: int, num_classes: int, ch: int = 32, attn_res: int = 0):
        super().__init__()
        ws = d_widths(image_size, ch)
        blocks: list[nn.Module] = []
        cin, side = channels, image_size
        for i, cout in enumerate(ws):
            blocks.append(DBlock(cin, cout, downsample=True, preactivation=i > 0))
            side //= 2
            if side == attn_res:
                blocks.append(SelfAttention(cout))
            cin = cout
        blocks.append(DBlock(cin, cin, downsample=False))  # one more block at 4x4
        self.blocks = nn.Sequential(*blocks)
        self.linear = snlinear(cin, 1)
        self.embed = nn.Embedding(num_classes, cin)
        nn.init.orthogonal_(self.embed.weight)
        self.embed = spectral_norm(self.embed)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        # x: [N, C, S, S], y: [N] long -> logits [N]
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling: [N, C']
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


def orthogonal_penalty(module: nn.Module, skip: tuple[nn.Parameter, ...] = ()) -> Tensor:
    """BigGAN's orthogonal regularisation sum_W ||W W^T * (1 - I)||_F^2 over weight matrices.

    Only off-diagonal terms are penalised (filters pushed towards orthogonality, norms free),
    which the paper found makes G amenable to the truncation trick. Rows are output units.
    """
    skip_ids = {id(p) for p in skip}
    total = None
    for p in module.parameters():
        if p.ndim < 2 or id(p) in skip_ids or not p.requires_grad:
            continue
        w = p.flatten(1)  # [out, fan_in]
        gram = w @ w.t()
        off = gram - torch.diag_embed(torch.diagonal(gram))
        term = off.pow(2).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())
