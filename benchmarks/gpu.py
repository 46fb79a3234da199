"""GPU training speed of realistic image GANs, in one command: images/s, MFU, peak memory, GPU
utilisation, and what running under Ray Train costs.

    python benchmarks/gpu.py                       # the one command: dcgan-64 and biggan-128, bf16,
                                                   # compile off and on, plain loop and 1-GPU Ray Train fit
    python benchmarks/gpu.py --models dcgan-64 --compile on --steps 100 --no-ray
    python benchmarks/gpu.py --peak-tflops 989     # a GPU missing from the peak table

Needs a CUDA device and a CUDA build of PyTorch; without one it says which is missing and exits
with status 2 at once (0 with --skip-without-cuda, as `benchmarks/run_all.py` calls it).

Models are the shipped configs configs/dcgan-64.yaml and configs/biggan-128.yaml (biggan-64:
biggan-digits scaled to 64 px) on the digits prepared at their size with 3 channels (pixels are
irrelevant to speed). For each model and each `train.compile` setting:

- plain: the recipe's own `train_step` in a bare loop on the loop's in-GPU `Batcher` (warm-up
  steps first, then the timed steps, one host sync at the end);
- ray: a real 1-GPU Ray Train fit (`driver.fit`, `train.use_gpu=true`) of 2 x --steps steps;
  its images/s is the loop's own rate over the last --steps steps (between two log points,
  where the loop syncs with the host anyway), past start-up and compilation;
- ray/plain: the two rates' ratio (what Ray Train, the loop's schedule and reporting cost); the
  plain loop gets the host threads a worker gets (`train.cpus_per_worker`).

Figures:
- images/s: timed steps x batch x n_critic / seconds;
- FLOPs per step: `torch.utils.flop_counter.FlopCounterMode` over one eager `train_step`
  (forward and backward of G and D: convolutions and matmuls; elementwise ops not counted);
- MFU: the plain loop's achieved FLOP/s over the GPU's dense bf16 tensor-core peak (table
  below, or --peak-tflops), so it is comparable across runs with and without amp;
- peak memory: `torch.cuda.max_memory_allocated` over the plain loop's timed steps (tensors;
  the caching allocator reserves more);
- GPU utilisation: NVML's utilization.gpu (share of time a kernel was running, not SM
  occupancy) sampled every 0.1 s during the timed steps, through pynvml when installed,
  else `nvidia-smi`; "n/a" when neither is available.

Training's CUDA flags (cuDNN autotuning, TF32) are the config's (`train.cudnn_benchmark`,
`train.tf32`, both on by default), applied by the recipe as in training. The last line is
`RESULT {json}` for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from _common import bare_recipe, prepared, timed_steps  # noqa: E402  (also puts the repo on sys.path)

REPO = Path(__file__).resolve().parent.parent

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' data sheets; GeForce
# cards at fp32 accumulation (what PyTorch uses). More specific names first.
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("GB200", 2500.0),
    ("B200", 2250.0),
    ("B100", 1750.0),
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM
    ("H800", 989.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A6000", 155.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
]

# name -> (base config, overrides): the shipped configs, on the digits at their size.
DIGITS = ["data.source=digits"]
MODELS: dict[str, tuple[str, list[str]]] = {
    "dcgan-64": ("configs/dcgan-64.yaml", DIGITS),
    "biggan-128": ("configs/biggan-128.yaml", DIGITS),
    "biggan-64": (
        "configs/biggan-digits.yaml",
        ["data.image_size=64", "data.channels=3", "model.z_dim=120", "model.params.g_ch=64", "model.params.d_ch=64", "model.params.shared_dim=128", "model.params.attn_res=32", "train.batch_size=64"],
    ),
}
DEFAULT_MODELS = ["dcgan-64", "biggan-128"]


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return value
    return None


class UtilSampler:
    """Mean NVML utilization.gpu of one device, sampled in a thread while active."""

    def __init__(self, device: torch.device, period: float = 0.1):
        self.samples: list[float] = []
        self.period = period
        self._stop = threading.Event()
        self._read = self._reader(device)
        self._thread: threading.Thread | None = None

    @staticmethod
    def _reader(device: torch.device) -> Any:
        """A function returning the device's utilization.gpu, or None when it cannot be read.
        The device is named by UUID (robust to CUDA_VISIBLE_DEVICES), else by index."""
        props = torch.cuda.get_device_properties(device)
        raw = getattr(props, "uuid", None)
        uuid = None if raw is None else (str(raw) if str(raw).startswith("GPU-") else f"GPU-{raw}")
        index = device.index if device.index is not None else torch.cuda.current_device()
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            handle = None
            if uuid:
                try:
                    handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
                except Exception:
                    handle = None
            handle = handle or pynvml.nvmlDeviceGetHandleByIndex(index)
            pynvml.nvmlDeviceGetUtilizationRates(handle)
            return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:
            pass
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return None
        for target in [t for t in (uuid, str(index)) if t]:

            def read(target: str = target) -> float:
                out = subprocess.run([smi, "-i", target, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
                return float(out.stdout.strip().splitlines()[0])

            try:
                read()
                return read
            except Exception:
                continue
        return None

    @property
    def available(self) -> bool:
        return self._read is not None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._read())
            except Exception:
                pass
            self._stop.wait(self.period)

    def __enter__(self) -> "UtilSampler":
        if self._read is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def flops_per_step(cfg: Any, data_dir: Path, device: torch.device) -> float:
    """FLOPs of one train_step, counted on an eager copy of the recipe (same shapes)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ganpipe.data.loading import load_tensors
    from ganpipe.train.loop import Batcher, build_recipe

    eager = cfg.model_copy(update={"train": cfg.train.model_copy(update={"compile": False})})
    recipe = build_recipe(eager, data_dir, device)
    batches = Batcher({k: v[: 4 * cfg.train.batch_size] for k, v in load_tensors(data_dir, "train").items()}, cfg.train.batch_size, 0, device)
    recipe.train_step(batches, 1)
    with FlopCounterMode(display=False) as fc:
        recipe.train_step(batches, 2)
    del recipe, batches
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return float(fc.get_total_flops())


def run_model(name: str, overrides: list[str], root: Path, device: torch.device, warmup: int, steps: int) -> dict[str, Any]:
    """The plain loop: the recipe's train_step on the in-GPU Batcher, nothing else."""
    from ganpipe.train.host import set_backend_flags

    base, model_overrides = MODELS[name]
    cfg, data_dir = prepared(base, root, model_overrides + overrides)
    if device.type == "cuda":
        set_backend_flags(cfg.train.cudnn_benchmark, cfg.train.tf32)  # as each training worker does
    # The host threads a Ray Train worker gets (Ray sets OMP_NUM_THREADS to its CPUs), so that
    # ray/plain compares like with like.
    torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    flops = flops_per_step(cfg, data_dir, device)
    recipe, batches = bare_recipe(cfg, data_dir, device)
    t_warm, _ = timed_steps(recipe, batches, 1, warmup, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    util = UtilSampler(device) if device.type == "cuda" else None
    if util is not None:
        util.__enter__()
    secs, _ = timed_steps(recipe, batches, warmup + 1, steps, device)
    if util is not None:
        util.__exit__()
    peak_mem = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    imgs = steps * cfg.train.batch_size * cfg.loss.n_critic
    out = {
        "model": name,
        "batch": cfg.train.batch_size,
        "n_critic": cfg.loss.n_critic,
        "images_per_s": imgs / secs,
        "step_ms": 1000 * secs / steps,
        "flops_per_step": flops,
        "achieved_tflops": flops * steps / secs / 1e12,
        "peak_mem_gib": peak_mem / 2**30 if peak_mem is not None else None,
        "gpu_util_pct": util.mean if util is not None else None,
        "warmup_s": t_warm,
        "flags": {"amp": cfg.train.amp, "channels_last": cfg.train.channels_last, "compile": cfg.train.compile},
    }
    del recipe, batches
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def ray_fit(name: str, overrides: list[str], root: Path, device: torch.device, steps: int) -> dict[str, Any]:
    """A 1-worker Ray Train fit of 2 x `steps` steps; images/s over its last `steps` steps.

    The loop reads its meter at log points (its only host sync): with log_every = steps and a
    checkpoint only at the end, the last read covers exactly the second half, after start-up
    and compilation, and before the final checkpoint is written."""
    from ganpipe.project import Project
    from ganpipe.train.driver import fit

    base, model_overrides = MODELS[name]
    sets = [
        f"train.steps={2 * steps}", f"train.log_every={steps}", f"train.checkpoint_every={2 * steps}",
        f"train.sample_every={2 * steps}", "eval.every=0", "train.num_workers=1",
        f"train.use_gpu={'true' if device.type == 'cuda' else 'false'}", f"train.run_name=gpu-bench-{name}-{len(list(root.glob('ray-*')))}",
    ]  # fmt: skip
    cfg, data_dir = prepared(base, root, model_overrides + overrides + sets)
    work = root / f"ray-{name}-{len(list(root.glob('ray-*')))}"
    work.mkdir()
    t0 = time.perf_counter()
    res = fit(cfg, data_dir, Project.load(work, env={}))
    return {"images_per_s": float(res.metrics["images_per_s_window"]), "fit_s": time.perf_counter() - t0}


def check_pinned_prefetch(device: torch.device, steps: int = 50) -> None:
    """The loop's host-memory path (pinned double buffers, copies on a side stream) must give
    the same batches as the in-device path; exits with an error when it does not."""
    from ganpipe.train.loop import Batcher

    data = {"image": torch.randn(4096, 3, 32, 32), "label": torch.arange(4096)}
    on_gpu = Batcher(data, 256, 0, device)
    pinned = Batcher(data, 256, 0, device, pin=True, device_fraction=0.0)
    assert on_gpu.on_device and not pinned.on_device and pinned._stream is not None
    for step in range(steps):
        a, b = on_gpu(), pinned()
        torch.cuda.synchronize(device)
        if not all(torch.equal(a[k], b[k]) for k in a):
            raise SystemExit(f"pinned prefetch gave a different batch at step {step}")
    print(f"  pinned-memory prefetch: {steps} batches identical to the in-device path", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per model (a Ray fit runs twice as many)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first in the plain loop (cuDNN autotuning, compilation)")
    ap.add_argument("--no-amp", action="store_true", help="fp32 instead of bf16 autocast")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--compile", choices=["off", "on", "both"], default="both", help="train.compile (torch.compile of G and D): off, on, or both (one row each)")
    ap.add_argument("--no-ray", action="store_true", help="only the plain loop (no Ray Train fit, no ray/plain ratio)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra config override for every model, e.g. train.batch_size=256")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, for MFU (default: from the table)")
    ap.add_argument("--skip-without-cuda", action="store_true", help="exit 0 (with a RESULT line saying skipped) when there is no CUDA device")
    ap.add_argument("--allow-cpu", action="store_true", help="run on the CPU to check the script itself (figures meaningless, no MFU)")
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")

    why = cuda_missing()
    if why and not args.allow_cpu:
        print(f"benchmarks/gpu.py: {why}; run it on a machine with an NVIDIA GPU and a CUDA build of PyTorch (or pass --allow-cpu to check the script itself).", file=sys.stderr)
        print("RESULT " + json.dumps({"benchmark": "gpu", "figure": f"skipped: {why}", "value": None, "target": "info: images/s, MFU, peak memory, utilisation, ray/plain", "met": None, "skipped": why}), flush=True)
        sys.exit(0 if args.skip_without_cuda else 2)

    device = torch.device("cpu") if why else torch.device("cuda")
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        peak = args.peak_tflops or peak_tflops(gpu)
    else:
        gpu, peak = f"CPU ({torch.get_num_threads()} threads), script check only", None
    flags = [f"train.amp={'off' if args.no_amp else 'bf16'}", f"train.channels_last={'false' if args.no_channels_last else 'true'}"]
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]

    if device.type == "cuda":
        check_pinned_prefetch(device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            for comp in compiles:
                sets = flags + [f"train.compile={'true' if comp else 'false'}"] + args.sets
                print(f"  {m}, compile {'on' if comp else 'off'}: plain loop, warm-up {args.warmup}, timed {args.steps} steps ...", flush=True)
                row = run_model(m, sets, Path(tmp), device, args.warmup, args.steps)
                row["compile"] = comp
                if not args.no_ray:
                    print(f"  {m}, compile {'on' if comp else 'off'}: 1-GPU Ray Train fit, {2 * args.steps} steps ...", flush=True)
                    ray = ray_fit(m, sets, Path(tmp), device, args.steps)
                    row["ray_images_per_s"], row["ray_fit_s"] = ray["images_per_s"], ray["fit_s"]
                    row["ray_vs_plain"] = ray["images_per_s"] / row["images_per_s"]
                rows.append(row)

    from rich.console import Console
    from rich.table import Table

    title = f"GPU training speed, {gpu}, peak {peak or '?'} bf16 TFLOP/s, {'fp32' if args.no_amp else 'bf16 amp'}{'' if args.no_channels_last else ', channels_last'}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}"
    t = Table(title=title)
    for c in ("model", "compile", "batch", "images/s", "step ms", "GFLOP/step", "TFLOP/s", "MFU", "peak mem GiB", "GPU util %", "warm-up s", "Ray images/s", "ray/plain"):
        t.add_column(c, justify="right" if c != "model" else "left")
    parts = []
    for r in rows:
        mfu = r["achieved_tflops"] / peak if peak else None
        r["mfu"] = mfu
        t.add_row(
            r["model"],
            "on" if r["compile"] else "off",
            str(r["batch"]),
            f"{r['images_per_s']:,.0f}",
            f"{r['step_ms']:.1f}",
            f"{r['flops_per_step'] / 1e9:,.1f}",
            f"{r['achieved_tflops']:.2f}",
            f"{100 * mfu:.1f}%" if mfu is not None else "n/a",
            f"{r['peak_mem_gib']:.2f}" if r["peak_mem_gib"] is not None else "n/a",
            f"{r['gpu_util_pct']:.0f}" if r["gpu_util_pct"] is not None else "n/a",
            f"{r['warmup_s']:.1f}",
            f"{r['ray_images_per_s']:,.0f}" if "ray_images_per_s" in r else "-",
            f"{r['ray_vs_plain']:.2f}" if "ray_vs_plain" in r else "-",
        )
        parts.append(f"{r['model']}{' compiled' if r['compile'] else ''} {r['images_per_s']:,.0f} img/s" + (f" MFU {100 * mfu:.1f}%" if mfu is not None else "") + (f" ray/plain {r['ray_vs_plain']:.2f}" if "ray_vs_plain" in r else ""))
    Console(width=None if sys.stdout.isatty() else 200).print(t)
    if device.type == "cuda" and peak is None:
        print(f"no peak for {gpu!r} in the table: pass --peak-tflops for MFU")
    print(
        "RESULT "
        + json.dumps(
            {
                "benchmark": "gpu",
                "figure": f"{gpu}: " + "; ".join(parts),
                "value": round(min(r["mfu"] for r in rows), 4) if all(r["mfu"] is not None for r in rows) else None,
                "target": "info: images/s, MFU, peak memory, utilisation, ray/plain",
                "met": None,
                "rows": rows,
            }
        ),
        flush=True,
    )


def cuda_missing() -> str | None:
    """Why this machine cannot run the benchmark (None when it can): checked before anything
    is prepared or imported beyond torch, so a machine without a GPU fails in seconds."""
    if not torch.version.cuda:
        return f"this torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return f"no CUDA device visible to PyTorch (torch {torch.__version__}, CUDA {torch.version.cuda}; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})"
    return None


if __name__ == "__main__":
    main()
