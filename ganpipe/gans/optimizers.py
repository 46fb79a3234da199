"""G's and D's optimisers by name (`optim.name`), so a loss can train with its paper's optimiser
(WGAN: RMSProp) without any recipe knowing which."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

import torch

from ganpipe.catalog import Catalog

if TYPE_CHECKING:
    from ganpipe.config import OptimConfig

Factory = Callable[[Iterable[torch.nn.Parameter], float, "OptimConfig"], torch.optim.Optimizer]
OPTIMIZERS: Catalog[Factory] = Catalog("optimizer")


@OPTIMIZERS.register("adam")
def _adam(params: Iterable[torch.nn.Parameter], lr: float, o: "OptimConfig") -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2))


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params: Iterable[torch.nn.Parameter], lr: float, o: "OptimConfig") -> torch.optim.Optimizer:
    # Arjovsky et al. 2017: momentum-based optimisers made the clipped critic unstable; RMSProp
    # with PyTorch's defaults otherwise, as in the paper's reference code.
    return torch.optim.RMSprop(params, lr=lr)


def make_optimizer(params: Iterable[torch.nn.Parameter], lr: float, o: "OptimConfig") -> torch.optim.Optimizer:
    """The configured optimiser (`o.name`) over `params` at learning rate `lr`."""
    return OPTIMIZERS.get(o.name)(params, lr, o)
