"""Offline KD: the frozen teacher's outputs and tapped features per training crop, computed once.

torchdistill's way of paying for a teacher only once: with fixed crops (``data.crop_slots: K``, so
each utterance has K crops, visited in turn, each named by a ``crop_id``) the teacher's output for a
crop never changes (eval mode, frozen weights), so ``kd.cache_teacher: true`` computes it, with the
features the KD terms tap, the first time the crop is seen and reads it back afterwards. The KD
loss and its gradients are those of the online computation (``tests/test_teacher_cache.py``),
up to floating-point rounding of running the teacher on a sub-batch, and with ``cache_dtype:
float16`` up to the half-precision rounding of the stored values.

Memory: one entry per crop (``K x`` utterances), the teacher's output plus every tapped feature
of that crop, on the CPU; ``stats()`` reports the count and bytes (the trainer logs them per epoch).
"""

from __future__ import annotations

from typing import Any, Callable

import torch


def _take(x: Any, j: int, dtype: torch.dtype) -> Any:
    """Item ``j`` (batch axis 0) of every tensor in a nested output, detached, on the CPU."""
    if isinstance(x, torch.Tensor):
        v = x[j].detach().to("cpu")
        return v.to(dtype) if v.is_floating_point() and not v.is_complex() else v.clone()
    if isinstance(x, (tuple, list)):
        return type(x)(_take(v, j, dtype) for v in x)
    if isinstance(x, dict):
        return {k: _take(v, j, dtype) for k, v in x.items()}
    return x


def _stack(items: list, device: torch.device | str) -> Any:
    """The inverse of ``_take`` over a batch of entries: float tensors back as float32 on ``device``."""
    first = items[0]
    if isinstance(first, torch.Tensor):
        out = torch.stack(items).to(device)
        return out.float() if out.is_floating_point() else out
    if isinstance(first, (tuple, list)):
        return type(first)(_stack([it[i] for it in items], device) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([it[k] for it in items], device) for k in first}
    return first


def _nbytes(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (tuple, list)):
        return sum(_nbytes(v) for v in x)
    if isinstance(x, dict):
        return sum(_nbytes(v) for v in x.values())
    return 0


class TeacherCache:
    """``lookup(crop_ids, compute, device) -> (teacher_out, teacher_feats)`` for a batch, where
    ``compute(indices)`` runs the teacher on the batch items ``indices`` (those not cached yet)
    and returns ``(out, feats)`` with batch axis 0."""

    def __init__(self, dtype: str = "float32") -> None:
        if dtype not in ("float32", "float16"):
            raise ValueError(f"kd.cache_dtype must be float32 or float16, not {dtype!r}")
        self.dtype = getattr(torch, dtype)
        self._store: dict[int, tuple[Any, Any]] = {}
        self.hits = self.misses = self.bytes = 0

    def __len__(self) -> int:
        return len(self._store)

    def lookup(
        self, crop_ids: list[int], compute: Callable[[list[int]], tuple[Any, Any]], device: torch.device | str
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        todo = [b for b, i in enumerate(crop_ids) if i not in self._store]
        if todo:
            out, feats = compute(todo)
            for j, b in enumerate(todo):
                entry = (_take(out, j, self.dtype), _take(feats, j, self.dtype))
                self._store[crop_ids[b]] = entry
                self.bytes += _nbytes(entry)
        self.misses += len(todo)
        self.hits += len(crop_ids) - len(todo)
        entries = [self._store[i] for i in crop_ids]
        return _stack([e[0] for e in entries], device), _stack([e[1] for e in entries], device)

    def stats(self) -> dict[str, int]:
        return {"crops": len(self._store), "bytes": self.bytes, "hits": self.hits, "misses": self.misses}
