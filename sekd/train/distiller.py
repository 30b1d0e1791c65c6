"""One module that owns everything a training step trains, with the batch loss as its forward.

``Distiller`` holds the model (the student, or a teacher being trained), the KD terms with the
adapters they create, and the task's trained modules (the speaker head); the frozen teacher stays
outside (it is not trained and not saved with the student). Its ``forward(*batch)`` is the task's
loss of the batch: ``(loss, parts)``.

Under ``torchrun`` the trainer wraps this one module in ``DistributedDataParallel``, so DDP
averages the gradients of every trained parameter (adapters and head included, as of the model)
and broadcasts all of their initial values and buffers from rank 0; ``train.grad_clip`` clips
``parameters()`` of the same module. Inside the forward the model is called directly (DDP's hooks
are on the parameters, not on the call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


class Distiller(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        kd_terms: nn.ModuleList,
        heads: Iterable[nn.Module],
        loss: Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, dict[str, float]]],
    ) -> None:
        super().__init__()
        # registration order = parameters() order = the optimizer's parameter order (checkpoints rely on it)
        self.model = model
        self.kd_terms = kd_terms
        self.heads = nn.ModuleList(heads)
        self._loss = loss  # a plain callable (the task's loss), not a submodule

    def forward(self, *batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(batch)
