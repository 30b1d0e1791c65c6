"""One registry helper names everything a config can name; typos list the known names."""

from __future__ import annotations

import pytest
import torch

from sekd.distill import KD_TERMS
from sekd.models import MODELS
from sekd.registry import Registry
from sekd.sv.aam import HEADS
from sekd.train.losses import LOSSES
from sekd.train.optim import OPTIMIZERS, SCHEDULERS, build_optimizer, build_scheduler, is_per_step
from sekd.train.tasks import TASKS


def test_register_build_and_refuse_a_second_registration():
    reg = Registry("widget")

    @reg.register("double")
    def double(x):
        return 2 * x

    assert reg.build("double", 21) == 42 and list(reg) == ["double"] and len(reg) == 1
    assert reg.get("missing") is None and "double" in reg
    with pytest.raises(ValueError, match="widget 'double' registered twice"):
        reg.register("double")(double)
    with pytest.raises(KeyError, match="unknown widget 'doubel'; known: double"):
        reg["doubel"]


@pytest.mark.parametrize(
    "registry, kind, names",
    [
        (MODELS, "model", {"dccrn", "uformer", "manner", "dpdcrn", "ecapa_tdnn"}),
        (KD_TERMS, "KD method", {"output", "at", "fitnet", "mtakd", "atkl", "mvat", "tfckd", "i2srf_tfckd", "imlkd"}),
        (LOSSES, "loss", {"sisnr", "snr", "l1_mrstft"}),
        (OPTIMIZERS, "optimizer", {"adam", "adamw", "sgd"}),
        (SCHEDULERS, "scheduler", {"plateau", "cosine", "step", "onecycle", "none"}),
        (HEADS, "head", {"aam"}),
        (TASKS, "task", {"enh", "sv"}),
    ],
)
def test_every_config_section_names_through_one_registry(registry, kind, names):
    assert isinstance(registry, Registry) and registry.kind == kind
    assert names <= set(registry)
    with pytest.raises(KeyError, match=f"unknown {kind} 'nope'; known: "):
        registry.build("nope")


def test_optimizer_and_scheduler_builders_keep_their_arguments():
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = build_optimizer(params, "sgd", lr=0.5, weight_decay=0.1, momentum=0.9)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[0]["weight_decay"] == 0.1
    sched = build_scheduler(opt, 10, "onecycle", steps_per_epoch=5, max_lr=1.0)
    assert isinstance(sched, torch.optim.lr_scheduler.OneCycleLR) and sched.total_steps == 50
    assert build_scheduler(opt, 10, "cosine").T_max == 10 and build_scheduler(opt, 10, "none") is None
    assert build_scheduler(opt, 10, "plateau", mode="min").mode == "min"
    assert is_per_step("onecycle") and not is_per_step("cosine")  # the builder says how it steps


@pytest.mark.parametrize(
    "name, monitor, mode, good, bad", [("enh", None, "max", 12.0, 11.0), ("sv", "valid_eer", "min", 2.0, 3.0)]
)
def test_each_task_names_its_monitored_score_and_direction(name, monitor, mode, good, bad):
    """The loop asks the task which way is better: SI-SNR up, EER down; NaN (a diverged model) never best."""
    task = object.__new__(TASKS[name])  # no datasets needed for the rule
    assert task.mode == mode and (monitor is None or task.monitor == monitor)
    assert task.better(good, bad) and not task.better(bad, good)
    assert task.better(good, task.worst) and not task.better(float("nan"), task.worst)
    # a tie: SV keeps the later epoch (EER moves in steps of one target trial), SE the earlier
    assert task.better(good, good) == (name == "sv")
