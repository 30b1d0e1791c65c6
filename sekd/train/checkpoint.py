"""Self-describing checkpoints, written atomically.

A checkpoint is a dict: ``model_name``, ``model_args``, ``state_dict``, ``config``,
``git_commit``, ``seed``, ``role``, ``num_params`` (enough to rebuild the model from one
file), plus ``trainer`` state in ``last.pt`` (optimizer, scheduler, position, RNG states).
Everything in it is a tensor or a plain value, so it loads with ``weights_only=True``: loading a
checkpoint or a packed model runs no code. One that needs more (made elsewhere, or by an old
sekd) is refused with a message, unless trusted (``SEKD_TRUST_CHECKPOINTS=1``).
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sekd.models import build_model
from sekd.output_dir import atomic_file

TRUST_ENV = "SEKD_TRUST_CHECKPOINTS"  # "1": load checkpoints that hold more than weights and plain values


def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers and numpy arrays as tensors (recursively through
    dicts, lists and tuples), so that ``torch.load(weights_only=True)`` reads it back."""
    if isinstance(obj, dict):
        return type(obj)((k, plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    return obj


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` of ``plain(obj)`` to a temporary file in the same directory, then rename over
    ``path``: what sekd saves loads with ``weights_only=True``."""
    path = Path(path)
    try:
        with atomic_file(path) as tmp:
            torch.save(plain(obj), tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
    except (OSError, RuntimeError) as exc:  # a full disk: no partial file left behind
        raise OSError(f"{path}: could not be written ({exc}); is the disk full?") from None


def git_commit() -> str | None:
    """The commit of the sekd source tree, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def add_trust_option(parser) -> None:
    """``--trust_checkpoint`` of the tools that load checkpoints (sets ``SEKD_TRUST_CHECKPOINTS``)."""
    parser.add_argument(
        "--trust_checkpoint",
        action="store_true",
        help="load checkpoints that hold more than weights and plain values (unpickling them may "
        "run code stored in them: only for files you trust)",
    )


def apply_trust_option(args) -> None:
    if getattr(args, "trust_checkpoint", False):
        os.environ[TRUST_ENV] = "1"


def _load(source, where: Path) -> dict:
    """``torch.load`` with ``weights_only=True`` (tensors and plain values: loading runs no code);
    a file that needs more is refused unless the user trusts it (``SEKD_TRUST_CHECKPOINTS=1``, or the
    tools' ``--trust_checkpoint``), because unpickling it may run code stored in it."""
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if os.environ.get(TRUST_ENV) == "1":
            if hasattr(source, "seek"):
                source.seek(0)
            return torch.load(source, map_location="cpu", weights_only=False)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{where}: holds Python objects besides weights and plain values ({first[:200]}); "
            f"loading it could run code stored in it. Load it only if you trust where it came from: "
            f"--trust_checkpoint (or {TRUST_ENV}=1)"
        ) from None


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
                return _load(io.BytesIO(z.read("model.pt")), path)
    return _load(path, path)


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
