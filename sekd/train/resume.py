"""Exact resume: the trainer state ``checkpoints/last.pt`` carries, and the check that a resumed
run is the experiment that was started.

``trainer_state`` is what a run needs beyond its weights to continue as if never stopped
(optimizer, schedule, KD terms' state, position inside the epoch, the epoch's running sums,
history, every RNG state); ``restore`` puts it back, after refusing a checkpoint made with
another configuration (``config_changes``: every setting outside ``RESUMABLE`` must match).
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sekd.train.checkpoint import load_checkpoint

if TYPE_CHECKING:
    from sekd.train.trainer import Trainer


class TrainingError(RuntimeError):
    """A run that cannot continue or did not produce a model: diverged, damaged or mismatched checkpoint."""


# Settings that may change between a run and its resumption: they do not change the result.
RESUMABLE = {
    "train.num_threads",
    "train.log_every_steps",
    "train.save_every_steps",
    "train.num_audio_examples",
    "train.device",
    "data.num_workers",
}


def config_changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``"key: old -> new"`` for each setting that differs (outside ``RESUMABLE``)."""
    out = []
    for key in sorted(set(old) | set(new)):
        where = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, where + ".")
        elif a != b and where not in RESUMABLE:
            out.append(f"{where}: {a!r} -> {b!r}")
    return out


def trainer_state(tr: Trainer) -> dict[str, Any]:
    """Everything but the weights that ``tr`` needs to continue exactly (``last.pt``'s ``trainer``)."""
    return {
        "optimizer": tr.optimizer.state_dict(),
        "scheduler": tr.scheduler.state_dict() if tr.scheduler else None,
        "kd_terms": tr.kd_terms.state_dict(),
        "epoch": tr.epoch,
        "step_in_epoch": tr.step_in_epoch,
        "global_step": tr.global_step,
        "best": tr.best,
        "history": tr.history,
        "epoch_sums": dict(tr.epoch_sums),
        "epoch_steps": tr.epoch_steps,
        "nonfinite": tr.nonfinite,
        "rng": {"torch": torch.get_rng_state(), "numpy": numpy_state(), "python": random.getstate()},
    }


def restore(tr: Trainer, path: Path) -> bool:
    """Load ``path`` (a ``last.pt``) into ``tr``; False when there is none. Raises ``TrainingError``
    for a damaged checkpoint or one started with another configuration (naming what changed)."""
    if not path.exists():
        return False
    try:
        ckpt = load_checkpoint(path)
        state = ckpt["trainer"]
    except (OSError, RuntimeError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise TrainingError(
            f"{path}: cannot resume from it ({type(exc).__name__}: {exc}); it is damaged "
            f"(a full disk?): remove {tr.out_dir} to train from scratch"
        ) from None
    changed = config_changes(ckpt.get("config") or {}, tr.cfg)
    # more epochs continue a run, unless its LR schedule spans them
    if tr.cfg["scheduler"].get("name") != "cosine":
        old_epochs = (ckpt.get("config") or {}).get("train", {}).get("max_epochs")
        if isinstance(old_epochs, int) and tr.cfg["train"]["max_epochs"] > old_epochs:
            changed = [c for c in changed if not c.startswith("train.max_epochs:")]
    if changed:
        raise TrainingError(
            f"{tr.out_dir} was started with another config; resuming would mix two "
            f"experiments: {'; '.join(changed)}. Use another --out_dir (or remove this one) "
            f"for the new settings"
        )
    tr.model.load_state_dict(ckpt["state_dict"])
    tr.optimizer.load_state_dict(state["optimizer"])
    if tr.scheduler and state["scheduler"]:
        tr.scheduler.load_state_dict(state["scheduler"])
    tr.kd_terms.load_state_dict(state["kd_terms"])
    tr.task.load_state(ckpt)
    tr.epoch, tr.step_in_epoch = state["epoch"], state["step_in_epoch"]
    tr.global_step, tr.best, tr.history = state["global_step"], state["best"], state["history"]
    tr.epoch_sums, tr.epoch_steps = dict(state.get("epoch_sums", {})), int(state.get("epoch_steps", 0))
    tr.nonfinite = int(state.get("nonfinite", 0))
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(numpy_state(state["rng"]["numpy"]))
    random.setstate(state["rng"]["python"])
    tr.log.info("resumed from %s at epoch %d, step %d", path, tr.epoch, tr.step_in_epoch)
    return True


def numpy_state(saved: dict | tuple | None = None):
    """numpy's global RNG state as plain values and a tensor (what ``weights_only`` loading reads),
    or, given such a dict (or an old checkpoint's tuple), the tuple ``np.random.set_state`` takes."""
    if saved is None:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        return {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        }
    if isinstance(saved, dict):
        return (
            saved["name"],
            np.asarray(saved["keys"], dtype=np.int64).astype(np.uint32),
            saved["pos"],
            saved["has_gauss"],
            saved["cached"],
        )
    return saved
