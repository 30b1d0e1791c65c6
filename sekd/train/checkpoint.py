"""Self-describing checkpoints, written atomically.

A checkpoint is a dict: ``model_name``, ``model_args``, ``state_dict``, ``config``,
``git_commit``, ``seed``, ``role``, ``num_params`` (enough to rebuild the model from one
file), plus ``trainer`` state in ``last.pt`` (optimizer, scheduler, position, RNG states).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sekd.models import build_model


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same directory, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def git_commit() -> str | None:
    """The commit of the sekd source tree, when it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights (eval mode)."""
    ckpt = load_checkpoint(path)
    for key in ("model_name", "model_args", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"{path}: not a sekd checkpoint (no {key!r})")
    model = build_model(ckpt["model_name"], **ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
