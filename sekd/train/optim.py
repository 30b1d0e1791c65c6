"""Optimizers and learning-rate schedules by name (``optim`` and ``scheduler`` config sections)."""

from __future__ import annotations

from typing import Callable

import torch

from sekd.registry import Registry

OPTIMIZERS: Registry[type[torch.optim.Optimizer]] = Registry("optimizer")
OPTIMIZERS.register("adam")(torch.optim.Adam)
OPTIMIZERS.register("adamw")(torch.optim.AdamW)
OPTIMIZERS.register("sgd")(torch.optim.SGD)


def build_optimizer(params, name: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0, **args):
    return OPTIMIZERS.build(name, params, lr=lr, weight_decay=weight_decay, **args)


# LR schedules: ``builder(optimizer, max_epochs, steps_per_epoch, **args)``, stepped once per
# epoch unless the builder says ``per_step = True`` (then once per optimizer step).
SCHEDULERS: Registry[Callable] = Registry("scheduler")


@SCHEDULERS.register("onecycle")
def _onecycle(optimizer, max_epochs, steps_per_epoch, **args):
    """``max_lr`` (default the optimizer's ``lr``), ``pct_start`` 0.3, over ``max_epochs *
    steps_per_epoch`` steps, as the official MANNER training's ``OneCycleLR``."""
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=args.get("max_lr", optimizer.param_groups[0]["lr"]),
        total_steps=max_epochs * steps_per_epoch,
        pct_start=args.get("pct_start", 0.3),
    )


_onecycle.per_step = True


@SCHEDULERS.register("plateau")
def _plateau(optimizer, max_epochs, steps_per_epoch, **args):
    """On the validation metric: ``mode: max`` for SI-SNR, ``min`` for EER."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=args.get("mode", "max"), factor=args.get("factor", 0.5), patience=args.get("patience", 1)
    )


@SCHEDULERS.register("cosine")
def _cosine(optimizer, max_epochs, steps_per_epoch, **args):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs, eta_min=args.get("eta_min", 0))


@SCHEDULERS.register("step")
def _step(optimizer, max_epochs, steps_per_epoch, **args):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.get("step_size", 1), gamma=args.get("gamma", 0.5))


@SCHEDULERS.register("none")
def _none(optimizer, max_epochs, steps_per_epoch, **args):
    return None


def build_scheduler(optimizer, max_epochs: int, name: str = "plateau", steps_per_epoch: int = 1, **args):
    """The LR schedule ``name`` (``SCHEDULERS``: plateau, cosine, step, onecycle, none)."""
    return SCHEDULERS.build(name, optimizer, max_epochs, steps_per_epoch, **args)


def is_per_step(name: str) -> bool:
    """The schedule ``name`` moves once per optimizer step (else once per epoch)."""
    return bool(getattr(SCHEDULERS[name], "per_step", False))
