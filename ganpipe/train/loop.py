"""The generic training loop: the recipe's steps, and at the points `schedule.Schedule` names,
metrics, evaluations, samples, checkpoints and reports; resumes from the runner's checkpoint.

`run_training` knows nothing of Ray or of any family; `train_loop_per_worker` is the thin
Ray Train entry point that plugs Ray's context, reporting and checkpoints into it.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import Tensor

from ganpipe.config import PipelineConfig, build_config
from ganpipe.data.loading import load_manifest, load_stored, to_model_inputs
from ganpipe.gans import FAMILIES, DataInfo
from ganpipe.gans.base import Batch, GradSync, Recipe
from ganpipe.train.checkpoint import load_state, save_checkpoint
from ganpipe.train.faults import Faults
from ganpipe.train.health import HealthMonitor
from ganpipe.train.host import set_backend_flags, tune_allocator
from ganpipe.train.meter import Meter
from ganpipe.train.schedule import Schedule


class Reporter(Protocol):
    """How the loop talks to its runner (Ray Train or a plain process)."""

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None: ...

    def latest_checkpoint(self) -> Path | None: ...


class Sink(Protocol):
    """Rank 0's side channel for metrics and sample images (MLflow in practice)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_samples(self, images: torch.Tensor, step: int) -> None: ...

    def flush(self) -> None: ...


class Sinks:
    """Several sinks as one (rank 0's progress to the driver, then MLflow)."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for s in self.sinks:
            s.log_metrics(metrics, step)

    def log_samples(self, images: torch.Tensor, step: int) -> None:
        for s in self.sinks:
            s.log_samples(images, step)

    def flush(self) -> None:
        for s in self.sinks:
            s.flush()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Batcher:
    """Random mini-batches from an in-memory split, one fresh permutation per epoch (per rank).

    Images may be kept as stored (uint8 N x H x W x C, `data.loading.load_stored`): each batch is
    then converted to what the recipe takes (float N x C x H x W in [-1, 1]) after its copy to
    the device, so the split costs a byte a pixel wherever it lives, and the copy a quarter of
    the float one. Float data (tests, benchmarks) pass through unchanged.

    On an accelerator the split is moved to device memory when it takes at most
    `device_fraction` of it: batches are then indexed on the device, with no copy per step.
    A larger split stays in host memory; with `pin`, each batch is gathered into one of two
    pinned buffers and copied on a side stream while the current step runs (a gather from
    pageable memory would make the copy synchronous).

    The permutation is drawn on the CPU (the same seeded sequence on every device) and copied to
    where the data lives once per epoch, from pinned memory without blocking; batches slice it
    there, so no step waits on a host-to-device copy of its indices."""

    def __init__(self, data: Batch, batch_size: int, seed: int, device: torch.device, pin: bool = False, device_fraction: float = 0.25):
        n = len(next(iter(data.values())))
        if n == 0:
            raise ValueError("empty training split")
        nbytes = sum(v.numel() * v.element_size() for v in data.values())
        self.on_device = device.type == "cpu" or nbytes <= device_fraction * _device_memory(device)
        self.data = {k: v.to(device) for k, v in data.items()} if self.on_device else data
        self.n, self.bs, self.device = n, min(batch_size, n), device
        self.gen = torch.Generator().manual_seed(seed)
        self._where = next(iter(self.data.values())).device  # the indices' device: the data's
        self.perm = self._permutation()
        self.pos = 0
        self._stream = None
        if pin and not self.on_device and device.type == "cuda":
            self._stream = torch.cuda.Stream(device)
            self._buffers = [{k: torch.empty((self.bs, *v.shape[1:]), dtype=v.dtype, pin_memory=True) for k, v in data.items()} for _ in range(2)]
            self._copied: list[Any] = [None, None]  # CUDA event of each buffer's last copy
            self._slot = 0
            self._next: tuple[Batch, Any] | None = None

    def _permutation(self) -> Tensor:
        perm = torch.randperm(self.n, generator=self.gen)
        if self._where.type == "cuda":
            perm = perm.pin_memory()  # an asynchronous copy; the pinned block is kept alive until it is done
        return perm.to(self._where, non_blocking=True)

    def _indices(self) -> Tensor:
        if self.pos + self.bs > self.n:
            self.perm = self._permutation()
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.bs]
        self.pos += self.bs
        return idx

    def __call__(self) -> Batch:
        if self._stream is None:
            idx = self._indices()
            return to_model_inputs({k: v[idx].to(self.device, non_blocking=True) for k, v in self.data.items()})
        if self._next is None:
            self._next = self._prefetch()
        batch, ready = self._next
        current = torch.cuda.current_stream(self.device)
        current.wait_event(ready)
        for v in batch.values():
            v.record_stream(current)  # allocated on the side stream, used on this one
        self._next = self._prefetch()  # the following batch copies while this step runs
        return batch

    def _prefetch(self) -> tuple[Batch, Any]:
        idx = self._indices()
        slot, self._slot = self._slot, 1 - self._slot
        if self._copied[slot] is not None:
            self._copied[slot].synchronize()  # the copy out of this buffer (two batches ago) is done
        buf = self._buffers[slot]
        for k, v in self.data.items():
            torch.index_select(v, 0, idx, out=buf[k])
        with torch.cuda.stream(self._stream):
            batch = to_model_inputs({k: b.to(self.device, non_blocking=True) for k, b in buf.items()})
            event = torch.cuda.Event()
            event.record(self._stream)
        self._copied[slot] = event
        return batch, event


def _device_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return 2**32  # other accelerators: assume 4 GiB


@dataclass
class LoopResult:
    step: int
    metrics: dict[str, float]
    images_per_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    recipe: Recipe | None = None  # the trained recipe (in-process runs: tests, benchmarks)


def build_recipe(cfg: PipelineConfig, data_dir: str | Path, device: torch.device, sync: GradSync | None = None) -> Recipe:
    info = DataInfo.from_manifest(load_manifest(data_dir))
    cls = FAMILIES.get(cfg.model.family)
    cls.check_data(info)
    return cls(cfg, info, device, sync)


def run_training(
    cfg: PipelineConfig,
    data_dir: str | Path,
    *,
    rank: int = 0,
    world: int = 1,
    device: torch.device | None = None,
    reporter: Reporter | None = None,
    sink: Sink | None = None,
    on_step: Callable[[int], None] | None = None,
    evaluator: Callable[[Recipe], dict[str, float]] | None = None,
    stream: Any = None,
    faults: Faults | None = None,
) -> LoopResult:
    """`stream`: this worker's Ray Data shard when `train.loader` is "stream" (Ray Train hands
    it out); an in-process run with that loader streams the shards itself. `faults`: deliberate
    faults for drills and tests (see `faults.Faults`)."""
    device = device or torch.device("cpu")
    t_begin = time.perf_counter()
    tune_allocator()  # before the first step's buffers are allocated
    t = cfg.train
    if device.type == "cuda":
        set_backend_flags(t.cudnn_benchmark, t.tf32)
    seed_everything(t.seed)  # identical initial weights on every rank
    recipe = build_recipe(cfg, data_dir, device)
    data, n = _split(cfg, data_dir, rank, world)

    start = _resume(recipe, reporter, device)  # 0, or the step of the runner's latest checkpoint
    # Per-rank noise and batch order; offset by the resume step so a resumed run draws fresh noise.
    seed_everything(t.seed * 100_003 + rank * 1_009 + start)
    batches = _batches(cfg, data_dir, data, t.seed + 7919 * rank + start, device, stream)
    schedule, health = Schedule(cfg), HealthMonitor()
    meter = Meter(t.batch_size * cfg.loss.n_critic * world, t_begin)
    history: list[dict[str, float]] = []
    metrics: dict[str, float] = {}
    try:
        for step in range(start + 1, t.steps + 1):
            if faults:
                faults.before_step(step, resumed=start > 0)
            logs = recipe.train_step(batches, step)
            if faults:
                logs = faults.after_step(step, logs)
            meter.step()
            if on_step:
                on_step(step)
            due = schedule.due(step)
            if not due.any:
                continue
            if due.checkpoint or due.eval or due.samples:
                # Every rank (a collective): what rank 0 saves, evaluates or samples from then
                # carries all ranks' BatchNorm statistics, not its own alone.
                recipe.average_batchnorm_stats()
            metrics = {k: float(v) for k, v in logs.items()}  # the only host sync: at these points
            metrics |= meter.read()
            metrics["step"] = float(step)
            metrics["start_step"] = float(start)  # > 0 after a resume: shows where training picked up
            health.check(metrics, step)
            if evaluator is not None and rank == 0 and due.eval:
                metrics.update({f"eval.{k}": float(v) for k, v in evaluator(recipe).items()})
            history.append(metrics)
            if rank == 0 and sink is not None:
                sink.log_metrics({k: v for k, v in metrics.items() if k != "step"}, step)
                if due.samples:
                    sink.log_samples(recipe.sampler().preview(64, seed=0, real=to_model_inputs({k: v[:32] for k, v in data.items()})), step)
            if reporter is None or not due.report:  # see Due.report: logged metrics go to the sink
                continue
            if not due.checkpoint:
                reporter.report(metrics, None)
                continue
            with tempfile.TemporaryDirectory(prefix="ganpipe-ckpt-") as tmp:
                ck = _save(Path(tmp) / "checkpoint", recipe, cfg, step, {"images_seen": meter.images, "data_size": n}) if rank == 0 else None
                reporter.report(metrics, ck)  # every rank reports; rank 0's report carries the checkpoint
    finally:
        if hasattr(batches, "close"):
            batches.close()  # the streaming reader's thread
    if rank == 0 and sink is not None:
        sink.flush()
    return LoopResult(step=t.steps, metrics=metrics, images_per_s=meter.images_per_s(), history=history, recipe=recipe)


def _resume(recipe: Recipe, reporter: Reporter | None, device: torch.device) -> int:
    ckpt = reporter.latest_checkpoint() if reporter else None
    if ckpt is None:
        return 0
    state = load_state(ckpt, map_location=device)
    recipe.load_state_dict(state["recipe"])
    return int(state["step"])


def _save(folder: Path, recipe: Recipe, cfg: PipelineConfig, step: int, extra: dict[str, Any]) -> Path:
    return save_checkpoint(folder, step=step, recipe_state=recipe.state_dict(), export=recipe.export(), config=cfg.to_dict(), extra=extra)


def _split(cfg: PipelineConfig, data_dir: str | Path, rank: int, world: int) -> tuple[Batch, int]:
    """This rank's training data in memory, as stored (images uint8), and the split's size.

    Each rank reads only its own rows (rank::world) from the shared shards; the Batcher
    converts a batch at a time on the device. When streaming, the data are read batch by batch
    elsewhere, and only a few validation images are kept, for sample previews."""
    n = int(load_manifest(data_dir)["counts"]["train"])
    if cfg.train.loader == "stream":
        return {k: v[:32].clone() for k, v in load_stored(data_dir, "val").items()}, n
    return load_stored(data_dir, "train", rank, world), n


def _batches(cfg: PipelineConfig, data_dir: str | Path, data: Batch, seed: int, device: torch.device, stream: Any) -> Any:
    if cfg.train.loader == "stream":
        from ganpipe.data.streaming import StreamBatcher, parquet_dataset

        return StreamBatcher(stream if stream is not None else parquet_dataset(data_dir), data_dir, cfg.train.batch_size, seed, device)
    return Batcher(data, cfg.train.batch_size, seed=seed, device=device, pin=device.type == "cuda")


class RayReporter:
    """Ray Train's report/checkpoint calls (every rank calls report the same number of times).

    `run_dir` is the run's folder in the runs storage, a local or mounted path or an object
    store URI (s3://...): resuming takes the newest verified checkpoint found there, which can
    be newer than the one Ray Train had recorded when the failure happened (see
    `checkpoint.newest_verified`)."""

    def __init__(self, run_dir: str | None = None) -> None:
        import ray.train

        self._train = ray.train
        self._run_dir = run_dir

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        ckpt = self._train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        self._train.report(metrics, checkpoint=ckpt)

    def latest_checkpoint(self) -> Path | None:
        if self._run_dir is not None:
            found = self._newest_on_storage()
            if found is not None:
                return found
        ck = self._train.get_checkpoint()
        if ck is None:
            return None
        # Copy to local disk: the storage may be remote (S3) on a cluster.
        local = Path(tempfile.mkdtemp(prefix="ganpipe-resume-"))
        return Path(ck.to_directory(str(local)))

    def _newest_on_storage(self) -> Path | None:
        """Rank 0 picks the newest verified checkpoint and every rank takes the same one, so all
        ranks start at the same step. On object storage rank 0 sends its URI, and each rank
        (on its own node) copies it."""
        import torch.distributed as dist

        from ganpipe.train.checkpoint import newest_verified
        from ganpipe.train.storage import is_remote, local_copy, newest_verified_remote

        remote = is_remote(self._run_dir)
        choice: list[str | None] = [None]
        mine = None
        if self._train.get_context().get_world_rank() == 0:
            found = newest_verified_remote(self._run_dir) if remote else newest_verified(self._run_dir)
            if found:
                mine, choice[0] = found[0], (found[2] if remote else str(found[0]))
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast_object_list(choice, src=0)
        if choice[0] is None:
            return None
        return mine or (local_copy(choice[0]) if remote else Path(choice[0]))


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: config = {cfg, data_dir, tracking, on_step, faults, ...} (see `driver.fit`)."""
    import ray.train
    import ray.train.torch

    from ganpipe import logs

    cfg = build_config(config["cfg"])
    logs.configure_worker(config.get("log_level"))  # the driver's terminal level, for what Ray forwards to it
    tune_allocator(config.get("malloc_tuning"))  # the driver's choice: a cluster's workers do not see its environment
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    _record_placement(config.get("placement_dir"), rank, world, device)
    sinks: list[Sink] = []
    if rank == 0 and config.get("progress"):  # the driver's live display (see train/progress.py)
        from ganpipe.train.progress import ProgressSender

        sinks.append(ProgressSender(**config["progress"], steps=cfg.train.steps, images_per_step=cfg.train.batch_size * cfg.loss.n_critic * world))
    if rank == 0 and config.get("tracking"):
        from ganpipe.tracking.sink import MlflowSink

        sinks.append(MlflowSink(**config["tracking"]))
    sink = None if not sinks else sinks[0] if len(sinks) == 1 else Sinks(sinks)
    evaluator = make_evaluator(cfg, config["data_dir"], config.get("cache_dir")) if cfg.eval.every else None
    reporter = RayReporter(config.get("run_dir"))
    stream = ray.train.get_dataset_shard("train") if cfg.train.loader == "stream" else None
    on_step = config.get("on_step") if rank == 0 else None
    run_training(
        cfg, config["data_dir"], rank=rank, world=world, device=device, reporter=reporter, sink=sink,
        evaluator=evaluator, stream=stream, on_step=on_step, faults=config.get("faults"),
    )


def _record_placement(folder: str | None, rank: int, world: int, device: torch.device) -> None:
    """Which node and device each rank ran on (for operators and the multi-node test)."""
    if not folder:
        return
    import json
    import socket

    import ray

    p = Path(folder)
    p.mkdir(parents=True, exist_ok=True)
    info = {
        "rank": rank,
        "world": world,
        "node_id": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": str(device),
    }
    (p / f"rank-{rank}.json").write_text(json.dumps(info))


def make_evaluator(cfg: PipelineConfig, data_dir: str | Path, cache_dir: str | Path | None) -> Callable[[Recipe], dict[str, float]]:
    """The config's metrics on a smaller sample, for schedulers that stop bad trials early."""
    from ganpipe.evaluate.metrics import EvalContext, evaluate

    cache = Path(cache_dir) if cache_dir else Path(data_dir).parent / ".cache"

    def run(recipe: Recipe) -> dict[str, float]:
        ctx = EvalContext(recipe.sampler(), Path(data_dir), cache, cfg.eval.during_training_samples, cfg.eval.seed, cfg.eval.classifier_steps)
        values, _ = evaluate(ctx, cfg.eval.metrics)
        return values

    return run
