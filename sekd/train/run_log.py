"""Where a training run reports: its ``train.log`` (rank 0 only), a silent stand-in before the
run starts (building a trainer writes nothing), the TensorBoard stand-in of other ranks, and the
command line recorded in ``model_info.json``."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path


def open_log(out_dir: Path, main: bool) -> logging.Logger:
    """The run's logger: ``out_dir/train.log`` and stderr on rank 0 (``main``), nothing elsewhere."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(f"sekd.train.{out_dir.resolve()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not main:  # one log: rank 0 writes it
        log.handlers = [logging.NullHandler()]
    elif not log.handlers:
        fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for handler in (logging.FileHandler(out_dir / "train.log"), logging.StreamHandler(sys.stderr)):
            handler.setFormatter(fmt)
            log.addHandler(handler)
    return log


def quiet_logger() -> logging.Logger:
    """A logger that writes nothing (a trainer's until ``run()`` opens its log)."""
    log = logging.getLogger("sekd.train.unstarted")
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


def command_line() -> str:
    """The command line of this process, as ``python -m <module> ...`` when run as a module."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["python", "-m", spec.name] if spec is not None and spec.name else [sys.argv[0]]
    return shlex.join(head + sys.argv[1:])


class NoWriter:
    """TensorBoard writer of ranks other than 0."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None
