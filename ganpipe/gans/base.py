"""The recipe contract: everything family-specific about training and sampling a GAN.

The training loop (ganpipe.train.loop) only schedules `train_step`, reports and checkpoints;
it never branches on a family. A recipe owns its networks, optimizers, update rule
(D steps, G step, penalties, EMA) and knows how to export a generator for sampling.
A `Sampler` is what a registered model wraps: it rebuilds the generator from an export.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, TypeVar

import torch
from pydantic import BaseModel
from torch import Tensor, nn

from ganpipe.catalog import Catalog
from ganpipe.gans.precision import Precision
from ganpipe.specs.families import FAMILY_SPECS
from ganpipe.specs.params import NoParams

log = logging.getLogger("ganpipe")

if TYPE_CHECKING:
    from ganpipe.config import PipelineConfig

Batch = dict[str, Tensor]
NextBatch = Callable[[], Batch]


@dataclass(frozen=True)
class DataInfo:
    """What a recipe needs to know about the prepared data (read from the manifest)."""

    kind: str = "images"  # images | paired | unpaired | points
    image_size: int = 16
    channels: int = 1
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, m: dict[str, Any]) -> "DataInfo":
        return cls(
            kind=m.get("kind", "images"),
            image_size=int(m.get("image_size", 0)),
            channels=int(m.get("channels", 0)),
            num_classes=int(m.get("num_classes", 0)),
            class_names=tuple(m.get("class_names", ())),
            extra=dict(m.get("extra", {})),
        )


class GradSync:
    """Data-parallel gradient averaging across workers, without the DDP wrapper.

    GAN updates do several forwards per backward and double backward for penalties, which
    DistributedDataParallel's reducer does not support; averaging gradients explicitly around
    each backward (as StyleGAN3 does) is equivalent synchronous data parallelism.

    `backward(loss, *modules)` is the update's backward: with `bucket_mb` > 0 it registers a
    post-accumulate-grad hook on each parameter for this one backward; parameters are grouped
    into buckets of about `bucket_mb` MB in reverse registration order (roughly the order the
    backward produces them, as DDP does), and a bucket's all-reduce starts asynchronously as
    soon as all its gradients are accumulated, overlapping the rest of the backward. Buckets
    start strictly in index order on every rank, so the collectives match even when ranks
    finish gradients in different orders; a bucket with parameters that got no gradient (e.g.
    a layer unused on this rank) starts after the backward, with zeros for those. The
    averaged gradients are written back before `backward` returns, so the optimizer step
    sees them. The hooks exist only during this backward: a penalty's inner
    `torch.autograd.grad(..., create_graph=True)` runs before it and never triggers them, and
    the outer backward accumulates each parameter once, whatever number of forwards (or
    double-backward graphs) feed it. Gradients accumulated by earlier plain `.backward()`
    calls (D's real and fake halves backed separately) are included, since each hook reads
    the accumulated `.grad`: call `backward` for the last one only.

    `bucket_mb=0` is the flat reduction: one flattened all-reduce per module after the
    backward (`grads`). With one process both are a plain `loss.backward()`.
    """

    def __init__(self, bucket_mb: float = 25.0) -> None:
        d = torch.distributed
        self.world = d.get_world_size() if d.is_available() and d.is_initialized() else 1
        self.bucket_bytes = int(bucket_mb * 2**20)
        self._plans: dict[tuple[int, ...], list[list[int]]] = {}
        self.overlapped = (0, 0)  # the last backward's (buckets started during it, buckets)

    def backward(self, loss: Tensor, *modules: nn.Module) -> None:
        """`loss.backward()`; afterwards `modules`' gradients are the average over the ranks."""
        if self.world == 1:
            loss.backward()
            return
        if self.bucket_bytes <= 0:
            loss.backward()
            for m in modules:
                self.grads(m)
            return
        params = _unique([p for m in modules for p in m.parameters() if p.requires_grad])
        reduction = _BucketedReduction(self._buckets(params), self.world)
        handles = [p.register_post_accumulate_grad_hook(reduction.ready) for p in params]
        try:
            loss.backward()
        finally:
            for h in handles:
                h.remove()
        self.overlapped = (len(reduction.started), len(reduction.buckets))
        reduction.finish()

    def _buckets(self, params: list[nn.Parameter]) -> list[list[nn.Parameter]]:
        key = tuple(id(p) for p in params)
        plan = self._plans.get(key)
        if plan is None:
            plan, size, last = [], 0, None
            for i in reversed(range(len(params))):
                p = params[i]
                nbytes, kind = p.numel() * p.element_size(), (p.dtype, p.device)
                if not plan or kind != last or size + nbytes > self.bucket_bytes:
                    plan.append([])
                    size, last = 0, kind
                plan[-1].append(i)
                size += nbytes
            self._plans[key] = plan
        return [[params[i] for i in bucket] for bucket in plan]

    def grads(self, module: nn.Module) -> None:
        """The flat reduction: one flattened all-reduce of `module`'s gradients, after the backward."""
        if self.world == 1:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def broadcast(self, module: nn.Module) -> None:
        """Start every rank from rank 0's weights and buffers."""
        if self.world == 1:
            return
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                torch.distributed.broadcast(t.data, src=0)

    def average_batchnorm_stats(self, *modules: nn.Module) -> None:
        """Replace every BatchNorm running mean and variance by its average over the ranks.

        Each rank's statistics follow its own batches; a checkpoint or export written by rank 0
        should carry the whole data's, not rank 0's. A collective: every rank must call it.
        (Batch counters are equal on all ranks and stay as they are.)"""
        if self.world == 1:
            return
        stats = [
            t
            for m in modules
            for bn in m.modules()
            if isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.track_running_stats
            for t in (bn.running_mean, bn.running_var)
            if t is not None
        ]
        stats = _unique(stats)
        if not stats:
            return
        with torch.no_grad():
            flat = torch.cat([t.reshape(-1).float() for t in stats])
            torch.distributed.all_reduce(flat)
            flat /= self.world
            offset = 0
            for t in stats:
                n = t.numel()
                t.copy_(flat[offset : offset + n].view_as(t))
                offset += n


class _BucketedReduction:
    """One backward's bucketed all-reduces (see `GradSync.backward`)."""

    def __init__(self, buckets: list[list[nn.Parameter]], world: int):
        self.buckets, self.world = buckets, world
        self.bucket_of = {id(p): i for i, b in enumerate(buckets) for p in b}
        self.waiting = [len(b) for b in buckets]  # gradients not yet accumulated, per bucket
        self.seen: set[int] = set()
        self.started: list[tuple[Tensor, Any]] = []  # (flat gradients, work), in bucket order

    def ready(self, p: Tensor) -> None:
        if id(p) in self.seen:  # one accumulation per parameter and backward; be safe anyway
            return
        self.seen.add(id(p))
        self.waiting[self.bucket_of[id(p)]] -= 1
        while len(self.started) < len(self.buckets) and self.waiting[len(self.started)] == 0:
            self._start(len(self.started))

    def _start(self, i: int) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.buckets[i]]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.started.append((flat, torch.distributed.all_reduce(flat, async_op=True)))

    def finish(self) -> None:
        while len(self.started) < len(self.buckets):  # parameters without a gradient on this rank
            self._start(len(self.started))
        for bucket, (flat, work) in zip(self.buckets, self.started):
            work.wait()
            flat /= self.world
            offset = 0
            for p in bucket:
                n = p.numel()
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
                offset += n


def _unique(tensors: list[Tensor]) -> list[Tensor]:
    """Shared parameters (or buffers) once, in first-seen order."""
    seen: set[int] = set()
    return [t for t in tensors if not (id(t) in seen or seen.add(id(t)))]


class Sampler(ABC):
    """Generates from an exported generator; what the MLflow model wraps."""

    output_kind: ClassVar[str] = "images"  # images | points
    needs_inputs: ClassVar[bool] = False  # translators: generate() requires `inputs`

    def __init__(self, spec: dict[str, Any], generator: nn.Module, device: torch.device | str = "cpu"):
        self.spec = spec
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()

    @staticmethod
    @abstractmethod
    def build_generator(spec: dict[str, Any]) -> nn.Module: ...

    @classmethod
    def from_export(cls, spec: dict[str, Any], state: dict[str, Tensor], device: torch.device | str = "cpu") -> "Sampler":
        g = cls.build_generator(spec).to(device)  # the state is copied straight to where it samples
        g.load_state_dict(state)
        return cls(spec, g, device)

    @abstractmethod
    def generate(
        self,
        n: int,
        seed: int = 0,
        labels: Tensor | None = None,
        inputs: Tensor | None = None,
        **kwargs: Any,
    ) -> Tensor:
        """n samples as a float tensor on the CPU: images N x C x H x W in [-1, 1], or N x 2 points."""

    def preview(self, n: int = 64, seed: int = 0, real: Batch | None = None) -> Tensor:
        """Samples for a grid: translators show input/output pairs of real inputs side by side."""
        if not self.needs_inputs:
            return self.generate(n, seed=seed)
        if real is None or "image" not in real:
            raise ValueError("a translator's preview needs real inputs")
        x = real["image"][: max(n // 2, 1)].cpu()
        y = self.generate(len(x), seed=seed, inputs=x)
        if x.shape[1] != y.shape[1]:
            x = x.expand(-1, y.shape[1], -1, -1) if x.shape[1] == 1 else x[:, : y.shape[1]]
        return torch.stack([x, y], 1).flatten(0, 1)  # [in0, out0, in1, out1, ...]

    @property
    def num_classes(self) -> int:
        return int(self.spec.get("num_classes", 0))


class Recipe(ABC):
    """One GAN family's training: nets, optimizers, update step, state, export.

    `Params`, `data_kinds` and `summary` come from the family's spec (`register_family`).
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    data_kinds: ClassVar[tuple[str, ...]] = ("images",)
    sampler_cls: ClassVar[type[Sampler]]
    summary: ClassVar[str] = ""

    def __init__(self, cfg: "PipelineConfig", info: DataInfo, device: torch.device, sync: GradSync | None = None):
        self.cfg = cfg
        self.info = info
        self.device = device
        self.sync = sync or GradSync()
        self.params = self.Params.model_validate(cfg.model.params)
        self.precision = Precision(cfg.train.amp, device)  # raises if the device lacks the dtype

    @classmethod
    def check_data(cls, info: DataInfo) -> None:
        from ganpipe.errors import ConfigError

        if info.kind not in cls.data_kinds:
            raise ConfigError(
                f"family {cls.__name__} trains on {'/'.join(cls.data_kinds)} data, but the prepared data is {info.kind!r}",
                hint="choose a data source of the right kind (see `ganpipe data list`)",
            )

    @abstractmethod
    def train_step(self, next_batch: NextBatch, step: int) -> dict[str, Tensor]:
        """One generator step (and its D steps). Returns detached scalar tensors (no host sync)."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]: ...

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    @abstractmethod
    def export(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """(spec, generator state) from which `sampler_cls.from_export` rebuilds the generator."""

    def sampler(self) -> Sampler:
        """A sampler of the current generator on the training device: previews and in-training
        evaluation generate where the recipe trains (a copy of the weights, not a view)."""
        spec, state = self.export()
        return self.sampler_cls.from_export(spec, {k: v.detach() for k, v in state.items()}, self.device)

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "extra": self.extra_state(),
            "scalers": self.precision.state_dict(self.optimizers()),  # fp16's loss scales; {} otherwise
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        self.load_extra_state(state.get("extra", {}))
        self.precision.load_state_dict(state.get("scalers", {}), self.optimizers())

    def convert_batchnorm(self, module: nn.Module) -> nn.Module:
        """`train.sync_bn`: BatchNorm layers become `SyncBatchNorm`, whose batch statistics are
        those of the global batch (an all-reduce in each training forward). Parameters,
        buffers and state_dict keys stay the same, so checkpoints and exports do not change.
        Call before the optimizers are built. PyTorch's SyncBatchNorm runs only on CUDA (and
        XPU/HPU) devices once there is more than one process; with one it is plain BatchNorm."""
        if not self.cfg.train.sync_bn:
            return module
        if self.sync.world > 1 and self.device.type not in ("cuda", "xpu", "hpu"):
            from ganpipe.errors import ConfigError

            raise ConfigError(
                f"train.sync_bn needs GPU workers: PyTorch's SyncBatchNorm does not run on {self.device.type}",
                hint="set train.use_gpu=true, or train.sync_bn=false",
            )
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)

    def average_batchnorm_stats(self) -> None:
        """Every rank's BatchNorm running statistics become the ranks' average (a collective:
        the loop calls it on every rank before a checkpoint, evaluation or samples)."""
        self.sync.average_batchnorm_stats(*self.modules().values())

    def compile_modules(self, *modules: nn.Module, multi_forward: tuple[nn.Module, ...] = ()) -> None:
        """`train.compile`: compile each module's forward in place (`nn.Module.compile`).

        Training calls go through the compiled graph, while the module object, its parameters
        and its state_dict keys stay those of the plain module: checkpoints, exports, EMA copies
        and the gradient all-reduce see no `_orig_mod.` prefix. Call after moving the modules
        to their device and memory format.

        `multi_forward` names the modules the update runs several times before one backward
        (D on real, then on fake images). Those with spectral norm stay eager: a compiled
        forward writes the power-iteration vector back into its buffer, which the first
        forward saved for the backward, so the backward fails ("modified by an inplace
        operation"); eager spectral norm clones the vector first.
        """
        if not self.cfg.train.compile:
            return
        for m in modules:
            if any(m is x for x in multi_forward) and has_spectral_norm(m):
                log.warning("train.compile: %s stays eager (spectral norm in a module run several times per backward)", type(m).__name__)
                continue
            m.compile()

    def autocast(self):
        return self.precision.autocast()


@contextmanager
def eager(*modules: nn.Module) -> Iterator[None]:
    """Within the block, calling a module compiled in place (`nn.Module.compile`) runs its plain
    forward: for the forwards a penalty differentiates twice (see `Recipe.compile_modules`).
    A no-op for modules that are not compiled; the compiled graph is kept for later calls."""
    saved = [m._compiled_call_impl for m in modules]
    for m in modules:
        m._compiled_call_impl = None
    try:
        yield
    finally:
        for m, c in zip(modules, saved):
            m._compiled_call_impl = c


def has_spectral_norm(module: nn.Module) -> bool:
    """Whether any submodule is spectrally normalised (parametrization or the older hook)."""
    for m in module.modules():
        params = getattr(m, "parametrizations", None)
        if params is not None and any(type(p).__name__ == "_SpectralNorm" for plist in params.values() for p in plist):
            return True
        if any(type(h).__name__ == "SpectralNorm" for h in m._forward_pre_hooks.values()):
            return True
    return False


FAMILIES: Catalog[type[Recipe]] = Catalog("model family", names=FAMILY_SPECS)
SAMPLERS: Catalog[type[Sampler]] = Catalog("sampler", names=FAMILY_SPECS)

R = TypeVar("R", bound=type[Recipe])


def register_family(name: str) -> Callable[[R], R]:
    """Register a recipe under its spec's name (ganpipe.specs.families), taking the spec's
    params class, data kinds and summary: what config checks saw is what training uses."""
    spec = FAMILY_SPECS.get(name)

    def deco(cls: R) -> R:
        cls.Params, cls.data_kinds, cls.summary = spec.Params, spec.data_kinds, spec.summary
        return FAMILIES.register(name)(cls)

    return deco


def sampler_from_export(spec: dict[str, Any], state: dict[str, Tensor], device: torch.device | str = "cpu") -> Sampler:
    import ganpipe.gans  # noqa: F401  (registers the families)

    return SAMPLERS.get(spec["family"]).from_export(spec, state, device)
