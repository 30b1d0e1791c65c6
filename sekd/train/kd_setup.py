"""What a distillation run adds to a training run, built from the config's ``kd`` section.

``build_kd(cfg, task, device) -> KDSetup``: the KD terms (``kd.terms``, each weight times
``kd.weight_scale``), the frozen teacher (``kd.teacher``: a checkpoint or packed model, at the
student's sample rate, handed to the task so that a speaker teacher brings its head), and the
teacher-target cache (``kd.cache_teacher``). Every misfit is a ``ConfigError`` naming the key.
The terms' adapters are created later, by the trainer's first pass over a batch, when the
features' sizes are known.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import torch
from torch import nn

from sekd.distill import build_kd_term
from sekd.distill.teacher_cache import TeacherCache
from sekd.train.checkpoint import load_model
from sekd.train.config import ConfigError


@dataclass
class KDSetup:
    terms: nn.ModuleList
    weights: list[float]
    names: list[str]
    teacher: nn.Module | None
    cache: TeacherCache | None


def build_kd(cfg: dict, task, device: torch.device) -> KDSetup:
    kcfg, dcfg = cfg["kd"], cfg["data"]
    terms, weights, names = nn.ModuleList(), [], []
    for i, term in enumerate(kcfg["terms"]):
        try:
            terms.append(build_kd_term(term["name"], **term.get("args", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"kd.terms[{i}] ({term.get('name')}): {exc}") from None
        weights.append(float(term.get("weight", 1.0)) * float(kcfg["weight_scale"]))
        names.append(term["name"])
    teacher = None
    if kcfg["teacher"]:
        if not terms:
            raise ConfigError("kd.teacher is set but kd.terms is empty")
        try:
            teacher, t_ckpt = load_model(kcfg["teacher"])
        except (OSError, RuntimeError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ConfigError(
                f"kd.teacher {kcfg['teacher']}: cannot load a model from it ({type(exc).__name__}: {exc})"
            ) from None
        t_rate = ((t_ckpt.get("config") or {}).get("data") or {}).get("sample_rate")
        if t_rate is not None and int(t_rate) != int(dcfg["sample_rate"]):
            raise ConfigError(
                f"kd.teacher {kcfg['teacher']} was trained at {t_rate} Hz, the student and its "
                f"data are at {dcfg['sample_rate']} Hz: a teacher hears the student's rate"
            )
        teacher.to(device)
        for p in teacher.parameters():
            p.requires_grad_(False)
        task.attach_teacher(t_ckpt, kcfg["teacher"], device)
    else:  # an ablation: terms that need no teacher (e.g. mtakd with teacher: false)
        needing = [n for n, t in zip(names, terms) if t.needs_teacher]
        if needing:
            raise ConfigError(f"kd.terms {', '.join(needing)} need a teacher checkpoint (kd.teacher / --teacher)")
    cache = None
    if kcfg["cache_teacher"]:
        if teacher is None or not task.caches_teacher:
            raise ConfigError(
                "kd.cache_teacher needs an enhancement teacher (kd.teacher); speaker-verification "
                "terms cache their own targets (imlkd: cache: true)"
            )
        if not int(dcfg["crop_slots"]):
            raise ConfigError(
                "kd.cache_teacher needs fixed crops to cache (data.crop_slots: K >= 1); random crops change every epoch"
            )
        cache = TeacherCache(str(kcfg["cache_dtype"]))
    return KDSetup(terms, weights, names, teacher, cache)
