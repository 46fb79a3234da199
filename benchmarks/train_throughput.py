"""Images/s of the Ray Train loop (1 worker) against a plain PyTorch loop with the same
model, batch and data, in one process on one machine. Target: ratio >= 0.9.

    python benchmarks/train_throughput.py [--steps 600] [--config configs/dcgan-digits.yaml]

Both loops use the same number of torch threads (the Ray worker gets all CPUs via
train.cpus_per_worker). Throughput counts generator steps x batch after the first log point's
warm-up is included equally on both sides (whole-run average).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ganpipe.config import load_config  # noqa: E402
from ganpipe.data.loading import load_tensors  # noqa: E402
from ganpipe.models.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402


def prepared_digits(root: Path) -> Path:
    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import prepare
    from ganpipe.data.sources import fetch

    fetch("digits", root / "data")
    out = root / "prepared" / "digits"
    prepare("digits", out, DataConfig(raw_root=str(root / "data")))
    return out


def plain_loop(cfg, data_dir: Path, steps: int) -> float:
    """What a user would write by hand: DCGAN, non-saturating loss, Adam, random batches."""
    torch.manual_seed(0)
    x = load_tensors(data_dir, "train")["image"]
    p = cfg.model.params
    G = DCGANGenerator(cfg.model.z_dim, x.shape[1], x.shape[-1], p["g_width"])
    D = DCGANDiscriminator(x.shape[1], x.shape[-1], p["d_width"], norm=p["d_norm"])
    og = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bs = cfg.train.batch_size
    t0 = time.perf_counter()
    for _ in range(steps):
        real = x[torch.randint(0, len(x), (bs,))]
        with torch.no_grad():
            fake = G(torch.randn(bs, cfg.model.z_dim))
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        od.zero_grad(set_to_none=True)
        loss_d.backward()
        od.step()
        D.requires_grad_(False)
        loss_g = F.softplus(-D(G(torch.randn(bs, cfg.model.z_dim)))).mean()
        og.zero_grad(set_to_none=True)
        loss_g.backward()
        og.step()
        D.requires_grad_(True)
    return steps * bs / (time.perf_counter() - t0)


def ray_loop(cfg, data_dir: Path, project: Path) -> tuple[float, float]:
    """(images/s inside the worker, wall time of the whole fit including Ray start-up)."""
    from ganpipe.train.driver import fit

    t0 = time.perf_counter()
    res = fit(cfg, data_dir, project)
    return float(res.metrics["images_per_s"]), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/dcgan-digits.yaml")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    threads = os.cpu_count() or 2
    torch.set_num_threads(threads)
    import ray

    ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = prepared_digits(root)
        for rep in range(args.repeats):
            cfg = load_config(
                args.config,
                [
                    f"train.steps={args.steps}",
                    f"train.cpus_per_worker={threads}",
                    f"train.log_every={max(args.steps // 4, 1)}",
                    f"train.checkpoint_every={args.steps}",
                    f"train.sample_every={args.steps}",
                    f"train.run_name=bench-{rep}",
                ],
            )
            plain = plain_loop(cfg, data_dir, args.steps)
            ray_ips, wall = ray_loop(cfg, data_dir, root)
            rows.append((rep, plain, ray_ips, ray_ips / plain, wall))
    t = Table(title=f"Training throughput, {args.config}, {args.steps} steps, batch {cfg.train.batch_size}, {threads} threads, {time.strftime('%Y-%m-%d')}")
    for c in ("repeat", "plain PyTorch img/s", "Ray Train (1 worker) img/s", "ratio", "Ray fit wall s (incl. start-up)"):
        t.add_column(c, justify="right")
    for rep, plain, rip, ratio, wall in rows:
        t.add_row(str(rep), f"{plain:.0f}", f"{rip:.0f}", f"{ratio:.3f}", f"{wall:.1f}")
    best = max(r[3] for r in rows)
    Console().print(t)
    Console().print(f"best ratio {best:.3f} (target >= 0.9): {'met' if best >= 0.9 else 'NOT met'}")


if __name__ == "__main__":
    main()
