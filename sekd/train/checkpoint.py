"""Self-describing checkpoints, written atomically.

A checkpoint is a dict: ``model_name``, ``model_args``, ``state_dict``, ``config``,
``git_commit``, ``seed``, ``role``, ``num_params`` (enough to rebuild the model from one
file), plus ``trainer`` state in ``last.pt`` (optimizer, scheduler, position, RNG states).
"""
from __future__ import annotations

import io
import os
import subprocess
import zipfile
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
    """A checkpoint file, or the ``model.pt`` inside a packed model (``sekd-pack``'s zip)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if not any(n.endswith("/data.pkl") for n in names):  # torch.save's own zip layout
                if "model.pt" not in names:
                    raise ValueError(f"{path}: not a sekd packed model (no model.pt inside)")
                return torch.load(io.BytesIO(z.read("model.pt")), map_location="cpu", weights_only=False)
    return torch.load(path, map_location="cpu", weights_only=False)


def build_from_checkpoint(ckpt: dict, where: str | Path) -> nn.Module:
    """The model a checkpoint describes, with its weights, in eval mode."""
    for key in ("model_name", "model_args", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"{where}: not a sekd checkpoint (no {key!r})")
    model = build_model(ckpt["model_name"], **ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint (or packed model) describes and load its weights (eval mode)."""
    ckpt = load_checkpoint(path)
    return build_from_checkpoint(ckpt, path), ckpt
