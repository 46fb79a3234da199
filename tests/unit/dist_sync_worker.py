"""Worker side of test_grad_sync: two gloo processes on 127.0.0.1, no Ray.

Each rank trains one step of every case with its own data, under the flat reduction and the
bucketed one (small buckets, so there are many, and the 25 MB default), and records each
synchronised backward's gradients and the parameters after the step. Rank 0 writes what the
test asserts into a JSON file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

REPO = Path(__file__).resolve().parents[2]
N = 8  # samples per rank and batch

_SMALL = {
    "dcgan": ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8"],
    "cgan": ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8"],
    "biggan": ["data.image_size=8", "model.params.g_ch=4", "model.params.d_ch=4", "model.params.shared_dim=8"],
    "pix2pix": ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8", "model.params.d_layers=1"],
    "cyclegan": ["data.image_size=8", "model.params.g_width=8", "model.params.d_width=8", "model.params.n_blocks=1",
                 "model.params.n_down=1", "model.params.d_layers=1", "model.params.pool_size=4"],
    "toy": ["model.params.g_width=16", "model.params.d_width=16", "model.params.pack=2"],
}
_CONFIG = {
    "dcgan": "dcgan-digits", "cgan": "cgan-digits", "biggan": "biggan-digits",
    "pix2pix": "pix2pix-colorize", "cyclegan": "cyclegan-textures", "toy": "toy-ring8",
}

# (family, loss label, overrides): every family with its config's loss, and the double-backward
# penalties (loss wgan-gp, loss.r1_weight) where the family allows them.
CASES: list[tuple[str, str, list[str]]] = [
    ("dcgan", "default", []),
    ("dcgan", "wgan-gp", ["loss.name=wgan-gp", "model.params.d_norm=none"]),
    ("dcgan", "r1", ["loss.r1_weight=1.0"]),
    ("cgan", "default", []),
    ("cgan", "wgan-gp", ["loss.name=wgan-gp", "model.params.d_norm=spectral"]),
    ("biggan", "default", []),
    ("biggan", "r1", ["loss.r1_weight=1.0"]),
    ("pix2pix", "default", []),
    ("pix2pix", "wgan-gp", ["loss.name=wgan-gp", "model.params.norm=instance"]),
    ("cyclegan", "default", []),
    ("cyclegan", "r1", ["loss.r1_weight=1.0"]),
    ("toy", "default", []),
    ("toy", "wgan-gp", ["loss.name=wgan-gp"]),
    ("toy", "r1", ["loss.r1_weight=1.0"]),
]
MODES = {"flat": 0.0, "bucketed-256B": 256 / 2**20, "bucketed-25MB": 25.0}


def config(family: str, overrides: list[str]) -> Any:
    from ganpipe.config import load_config
    from ganpipe.validation import validate

    extra = [f"train.batch_size={N}", "train.steps=10", "optim.grad_clip=null", *_SMALL[family], *overrides]
    return validate(load_config(REPO / "configs" / f"{_CONFIG[family]}.yaml", extra))


def info(family: str) -> Any:
    from ganpipe.gans import DataInfo

    if family == "toy":
        return DataInfo(kind="points", image_size=0, channels=0)
    kind = {"pix2pix": "paired", "cyclegan": "unpaired"}.get(family, "images")
    return DataInfo(kind=kind, image_size=8, channels=1, num_classes=3 if family in ("cgan", "biggan") else 0)


def batches(family: str, rank: int, count: int = 4) -> list[dict[str, torch.Tensor]]:
    """This rank's batches: the same on every call, different on each rank."""
    g = torch.Generator().manual_seed(1000 + rank)
    out = []
    for _ in range(count):
        if family == "toy":
            out.append({"x": torch.randn(N, 2, generator=g), "label": torch.zeros(N, dtype=torch.long)})
            continue
        img = lambda: torch.rand(N, 1, 8, 8, generator=g) * 2 - 1  # noqa: E731
        b = {"image": img(), "label": torch.randint(0, 3, (N,), generator=g)}
        if family == "pix2pix":
            b["target"] = img()
        if family == "cyclegan":
            b["image_b"] = img()
        out.append(b)
    return out


def recording_sync(bucket_mb: float) -> Any:
    from ganpipe.gans.base import GradSync

    class Recording(GradSync):
        """Keeps each synchronised backward's averaged gradients."""

        def __init__(self) -> None:
            super().__init__(bucket_mb)
            self.log: list[list[torch.Tensor]] = []
            self.early: list[tuple[int, int]] = []

        def backward(self, loss: torch.Tensor, *modules: nn.Module) -> None:
            super().backward(loss, *modules)
            self.early.append(self.overlapped)
            self.log.append([p.grad.detach().clone() for m in modules for p in m.parameters() if p.requires_grad])

    return Recording()


def one_step(family: str, overrides: list[str], bucket_mb: float, rank: int) -> tuple[list, list[torch.Tensor], Any]:
    """(averaged gradients of each synchronised backward, parameters after the step, recipe)"""
    from ganpipe.gans import FAMILIES

    cfg = config(family, overrides)
    torch.manual_seed(0)
    sync = recording_sync(bucket_mb)
    recipe = FAMILIES.get(family)(cfg, info(family), torch.device("cpu"), sync)
    torch.manual_seed(100 + rank)  # per-rank noise, as the loop seeds it
    data = iter(batches(family, rank))
    recipe.train_step(lambda: next(data), 1)
    params = [t.detach().clone() for m in recipe.modules().values() for t in m.parameters()]
    return sync.log, params, recipe


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b)
    return max(((x.float() - y.float()).abs().max().item() for x, y in zip(a, b)), default=0.0)


def flat_list(log: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [g for step in log for g in step]


def check_cases(rank: int, world: int) -> list[dict[str, Any]]:
    rows = []
    for family, loss, overrides in CASES:
        results = {mode: one_step(family, overrides, mb, rank) for mode, mb in MODES.items()}
        flat_log, flat_params, _ = results["flat"]
        row: dict[str, Any] = {"family": family, "loss": loss, "backwards": len(flat_log)}
        for mode in MODES:
            if mode == "flat":
                continue
            log, params, _ = results[mode]
            row[f"{mode} grads"] = max_diff(flat_list(flat_log), flat_list(log))
            row[f"{mode} params"] = max_diff(flat_params, params)
        # All ranks hold the same weights after the step.
        vec = torch.cat([p.reshape(-1) for p in results["bucketed-256B"][1]])
        other = [torch.empty_like(vec) for _ in range(world)]
        dist.all_gather(other, vec)
        early = results["bucketed-256B"][2].sync.early
        row["buckets started in backward"] = "; ".join(f"{a}/{b}" for a, b in early)
        row["ranks agree"] = max((o - vec).abs().max().item() for o in other)
        if family == "toy":
            row["vs full batch"] = toy_full_batch(overrides, rank, world)
        rows.append(row)
    return rows


# -- the full batch on one process (exact for the toy GAN: no BatchNorm, no dropout) ------------

def _pinned_noise(recipe: Any, z: torch.Tensor, alpha: torch.Tensor) -> None:
    """The step's z and the penalty's interpolation weights come from fixed tensors."""
    import ganpipe.gans.adversarial as adv
    from ganpipe.losses import gradient_penalty

    zs = iter(z)
    recipe._z = lambda n: next(zs)[:n]

    def gp(critic: Any, real: torch.Tensor, fake: torch.Tensor, group: int = 1, **kw: Any) -> torch.Tensor:
        rand = torch.rand
        torch.rand = lambda shape, **kw: alpha[: shape[0]].reshape(shape).to(kw.get("dtype") or torch.float32)
        try:
            return gradient_penalty(critic, real, fake, group=group, **kw)
        finally:
            torch.rand = rand

    adv.gradient_penalty = gp


def toy_full_batch(overrides: list[str], rank: int, world: int) -> float:
    """Max |distributed averaged gradient - gradient of the concatenated batch on one process|."""
    import ganpipe.gans.adversarial as adv
    from ganpipe.gans import FAMILIES

    keep = adv.gradient_penalty
    cfg = config("toy", overrides)
    steps = cfg.loss.n_critic + 1
    z = torch.randn(steps, world * N, cfg.model.z_dim, generator=torch.Generator().manual_seed(7))
    alpha = torch.rand(world * N, generator=torch.Generator().manual_seed(8))
    pack = cfg.model.params["pack"]
    per = N // pack  # interpolation weights per rank (one per packed group)
    try:
        torch.manual_seed(0)
        dist_sync = recording_sync(256 / 2**20)
        r = FAMILIES.get("toy")(cfg, info("toy"), torch.device("cpu"), dist_sync)
        _pinned_noise(r, z[:, rank * N : (rank + 1) * N], alpha[rank * per : (rank + 1) * per])
        data = iter(batches("toy", rank))
        r.train_step(lambda: next(data), 1)

        torch.manual_seed(0)
        one = recording_sync(0.0)
        one.world = 1  # one process, whatever the process group says
        r1 = FAMILIES.get("toy")(cfg, info("toy"), torch.device("cpu"), one)
        _pinned_noise(r1, z, alpha[: world * per])
        parts = [batches("toy", k) for k in range(world)]
        full = iter([{k: torch.cat([p[i][k] for p in parts]) for k in parts[0][i]} for i in range(len(parts[0]))])
        r1.train_step(lambda: next(full), 1)
    finally:
        adv.gradient_penalty = keep
    return max_diff(flat_list(dist_sync.log), flat_list(one.log))


# -- patterns the recipes do not all use, on plain modules ------------------------------------

class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.unused = nn.Linear(3, 3)  # no gradient in any step
        self.head = nn.Linear(4 * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.conv(x)).flatten(1))


def pattern_loss(net: Net, x: torch.Tensor, y: torch.Tensor, pattern: str) -> torch.Tensor:
    """`pattern` on inputs x (real) and y (fake); means over the batch, so the full batch's
    loss is the ranks' average. 'twice' backs the real half itself and returns the fake half."""
    if pattern == "two forwards":
        return nn.functional.softplus(-net(x)).mean() + nn.functional.softplus(net(y)).mean()
    if pattern == "gradient penalty":
        xh = (0.3 * x + 0.7 * y).requires_grad_(True)
        (g,) = torch.autograd.grad(net(xh).sum(), xh, create_graph=True)
        return net(y).mean() - net(x).mean() + 10 * ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    if pattern == "r1":
        x = x.detach().requires_grad_(True)
        out = net(x)
        (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        return nn.functional.softplus(-out).mean() + g.flatten(1).pow(2).sum(1).mean()
    if pattern == "twice":
        nn.functional.softplus(-net(x)).mean().backward()
        return nn.functional.softplus(net(y)).mean()
    raise ValueError(pattern)


def check_patterns(rank: int, world: int) -> list[dict[str, Any]]:
    from ganpipe.gans.base import GradSync

    g = torch.Generator().manual_seed(5)
    xs, ys = torch.randn(world * N, 1, 4, 4, generator=g), torch.randn(world * N, 1, 4, 4, generator=g)
    x, y = xs[rank * N : (rank + 1) * N], ys[rank * N : (rank + 1) * N]
    rows = []
    for pattern in ("two forwards", "gradient penalty", "r1", "twice"):
        torch.manual_seed(0)
        ref, net = Net(), Net()
        net.load_state_dict(ref.state_dict())
        sync = GradSync(bucket_mb=1 / 2**20)  # one byte: a bucket per parameter
        sync.backward(pattern_loss(net, x, y, pattern), net)
        hooks_left = sum(len(getattr(p, "_post_accumulate_grad_hooks", None) or {}) for p in net.parameters())
        pattern_loss(ref, xs, ys, pattern).backward()  # the full batch on one process
        diffs = [(p.grad - (q.grad if q.grad is not None else torch.zeros_like(q))).abs().max().item()
                 for p, q in zip(net.parameters(), ref.parameters())]
        rows.append({"pattern": pattern, "vs full batch": max(diffs), "hooks left": hooks_left,
                     "unused grad": net.unused.weight.grad.abs().max().item()})
    return rows


# -- BatchNorm running statistics --------------------------------------------------------------

def check_bn_average(rank: int, world: int) -> list[dict[str, Any]]:
    from ganpipe.errors import ConfigError

    rows = []
    for family in ("dcgan", "biggan", "pix2pix"):
        _, _, recipe = one_step(family, [], 25.0, rank)
        bns = [m for mod in recipe.modules().values() for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        before = torch.cat([t.reshape(-1) for m in bns for t in (m.running_mean, m.running_var)])
        gathered = [torch.empty_like(before) for _ in range(world)]
        dist.all_gather(gathered, before)
        recipe.average_batchnorm_stats()
        after = torch.cat([t.reshape(-1) for m in bns for t in (m.running_mean, m.running_var)])
        rows.append({
            "family": family,
            "bn layers": len(bns),
            "ranks differed": (gathered[0] - gathered[1]).abs().max().item(),
            "vs mean": (after - torch.stack(gathered).mean(0)).abs().max().item(),
        })
    try:  # SyncBatchNorm cannot run on CPU workers: a named error at start-up
        from ganpipe.gans import FAMILIES

        FAMILIES.get("dcgan")(config("dcgan", ["train.sync_bn=true"]), info("dcgan"), torch.device("cpu"))
        rows.append({"family": "dcgan", "sync_bn on cpu": "no error"})
    except ConfigError as e:
        rows.append({"family": "dcgan", "sync_bn on cpu": str(e)})
    return rows


def main(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        import ganpipe.gans  # noqa: F401  (registers the families)

        report = {"cases": check_cases(rank, world), "patterns": check_patterns(rank, world), "bn": check_bn_average(rank, world)}
        if rank == 0:
            Path(out).write_text(json.dumps(report, indent=1))
        dist.barrier()
    finally:
        dist.destroy_process_group()


