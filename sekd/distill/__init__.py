"""Knowledge-distillation terms, registered by name, and the feature taps they read.

A KD term is an ``nn.Module`` (``KDTerm``) built from a config entry
``{name: <registry name>, weight: <float>, args: {...}}``. It declares the module
paths it needs from the student and the teacher (``student_taps`` /
``teacher_taps``); the training loop captures those features with forward hooks
(``sekd.distill.taps``) and calls the term with a ``KDContext``. Terms may own
trainable adapters; they train with the student and are not part of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn


@dataclass
class KDContext:
    """Everything a KD term may read for one batch.

    ``noisy [B, C, T]``, ``clean [B, T]``, ``student_out``/``teacher_out [B, T]``;
    ``student_feats``/``teacher_feats`` map module paths to the captured outputs.
    """

    noisy: torch.Tensor
    clean: torch.Tensor
    student_out: torch.Tensor
    teacher_out: torch.Tensor
    student_feats: dict[str, Any] = field(default_factory=dict)
    teacher_feats: dict[str, Any] = field(default_factory=dict)


class KDTerm(nn.Module):
    """Base class of KD terms: ``forward(ctx) -> scalar loss``."""

    def student_taps(self) -> list[str]:
        return []

    def teacher_taps(self) -> list[str]:
        return []

    def forward(self, ctx: KDContext) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


KD_TERMS: dict[str, type[KDTerm]] = {}


def register_kd(name: str) -> Callable[[type[KDTerm]], type[KDTerm]]:
    def wrap(cls: type[KDTerm]) -> type[KDTerm]:
        if name in KD_TERMS:
            raise ValueError(f"KD term {name!r} registered twice")
        KD_TERMS[name] = cls
        return cls

    return wrap


def build_kd_term(name: str, **args: Any) -> KDTerm:
    if name not in KD_TERMS:
        raise KeyError(f"unknown KD method {name!r}; known: {', '.join(sorted(KD_TERMS))}")
    return KD_TERMS[name](**args)


# Each import registers its terms (one file per method).
from sekd.distill import output, fitnet, at, atkl, mvat, tfckd, i2srf_tfckd, mtakd  # noqa: E402,F401
