"""Feature plumbing shared by the feature-level KD terms: layouts, resizing, layer pairs.

Models keep their own tensor layouts (DCCRN and Uformer ``[B, C, F, T]``, DPDCRN
``[B, C, T, F]``, MANNER ``[B, C, T]``, a time-major RNN ``[T, B, D]``). A KD config
names the layout of each side once, and every term sees canonical ``[B, C, T, F]``
tensors (``F = 1`` for time-domain features):

    student_layers: [encoder.1, encoder.3]
    student_layout: BCFT          # one of LAYOUTS
    teacher_layers: [encoder.1, encoder.3]
    teacher_layout: BCFT

A module whose output is a tuple (an LSTM, Uformer's conformer) contributes its first
element. Teacher and student features may differ in frames (other hop sizes), bins and
channels: ``resize_to`` interpolates a teacher tensor to the student's ``(T, F)``
(bilinear, as in the literature's cross-resolution KD); channel mismatches are the
business of each term (adapters, or channel-free statistics).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from sekd.distill import KDContext, KDTerm

LAYOUTS = ("BCFT", "BCTF", "BCT", "BTC", "TBC")  # what to_bctf turns into [B, C, T, F]


def check_layouts(*layouts: str) -> None:
    for layout in layouts:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown feature layout {layout!r}; known: {', '.join(LAYOUTS)}")


def to_bctf(x: Any, layout: str) -> torch.Tensor:
    """A captured feature in ``layout`` as a ``[B, C, T, F]`` tensor."""
    if isinstance(x, (tuple, list)):
        x = x[0]
    check_layouts(layout)
    if x.dim() != len(layout):
        raise ValueError(f"a {layout} feature must have {len(layout)} dimensions, got shape {tuple(x.shape)}")
    if layout == "BCFT":
        return x.transpose(2, 3)
    if layout == "BCTF":
        return x
    if layout == "BCT":
        return x.unsqueeze(-1)
    if layout == "BTC":
        return x.transpose(1, 2).unsqueeze(-1)
    return x.permute(1, 2, 0).unsqueeze(-1)  # TBC


def resize_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Interpolate the last two dims of ``[B, C, T, F]`` to ``size = (T', F')`` (no-op if equal)."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def resize_1d(x: torch.Tensor, length: int) -> torch.Tensor:
    """Interpolate the last dim of ``[B, N]`` (or ``[B, C, N]``) to ``length`` (linear)."""
    if x.shape[-1] == length:
        return x
    flat = x.reshape(-1, 1, x.shape[-1])
    return F.interpolate(flat, size=length, mode="linear", align_corners=False).reshape(*x.shape[:-1], length)


class FeatureKD(KDTerm):
    """Base of terms that match student layers with teacher layers.

    ``student_layers[i]`` pairs with ``teacher_layers[i]`` for the pairwise terms
    (``fitnet``, ``at``, ``atkl``); the set-based terms (``tfckd``) use the lists as sets.
    Terms with adapters create them at the first batch, from the shapes they see.
    """

    pairwise = True

    def __init__(
        self,
        student_layers: list[str],
        teacher_layers: list[str],
        student_layout: str = "BCFT",
        teacher_layout: str | None = None,
    ) -> None:
        super().__init__()
        if not student_layers or not teacher_layers:
            raise ValueError(f"{type(self).__name__}: student_layers and teacher_layers must not be empty")
        if self.pairwise and len(student_layers) != len(teacher_layers):
            raise ValueError(
                f"{type(self).__name__} pairs layers one to one: {len(student_layers)} student "
                f"layers vs {len(teacher_layers)} teacher layers"
            )
        check_layouts(student_layout, teacher_layout or student_layout)
        self.student_layers, self.teacher_layers = list(student_layers), list(teacher_layers)
        self.student_layout, self.teacher_layout = student_layout, teacher_layout or student_layout

    def student_taps(self) -> list[str]:
        return self.student_layers

    def teacher_taps(self) -> list[str]:
        return self.teacher_layers

    def features(self, ctx: KDContext) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The student's and the (detached) teacher's features as ``[B, C, T, F]``."""
        s = [to_bctf(ctx.student_feats[p], self.student_layout) for p in self.student_layers]
        t = [to_bctf(ctx.teacher_feats[p], self.teacher_layout).detach() for p in self.teacher_layers]
        return s, t
