"""Make a trained model a system of a recipe, without training it (``enh.sh --teacher_model``).

Usage:
    python -m sekd.bin.import_model --model pretrained/teacher.zip --out_dir exp/teacher \\
        [--role teacher] [--valid_dir data/valid]

``--model`` is a checkpoint (``best.pt``/``last.pt``) or a ``sekd-pack`` zip. Writes, as a
trained system would have them, ``<out_dir>/checkpoints/best.pt`` (the model only: no
optimizer state), ``config.yaml`` and ``model_info.json`` (role, parameters, where the model
came from and its SHA-256, and the training record the zip carries: the command, commit,
wall time, best validation score and the learning curve). With ``--valid_dir`` it measures the
score training selected the model by on that validation set (SI-SNR in dB for enhancement
models, EER in % for speaker models, as ``sekd.train.tasks`` validates) and logs it beside the
recorded value; ``--expect_valid`` makes a difference above ``--tolerance`` (dB or EER points)
an error (a teacher that does not reproduce its own record is not the teacher it claims to be).

The system dir appears only when it is complete (written in a temp dir, then renamed), and
an existing one is never overwritten: importing into a dir that holds another model is an
error naming both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

from sekd.train.checkpoint import (
    add_trust_option,
    apply_trust_option,
    build_from_checkpoint,
    load_checkpoint,
    save_atomic,
)
from sekd.train.config import dump

# What a packed model carries of its training (meta.json "training"), from model_info.json.
TRAINING_KEYS = (
    "command",
    "git_commit",
    "train_dir",
    "valid_dir",
    "train_seconds",
    "best_valid_sisnr",
    "best_valid_eer",
    "best_metric",
    "best_valid_pesq",
    "best_epoch",
    "epochs",
    "steps",
    "history",
)
KEEP = ("model_name", "model_args", "state_dict", "config", "git_commit", "seed", "role", "num_params")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def training_record(path: Path, ckpt: dict) -> dict:
    """What is known of how the model was trained: a zip's ``meta.json`` ``training`` entry, or the
    ``model_info.json`` beside a checkpoint's ``checkpoints/`` dir."""
    if zipfile.is_zipfile(path):  # a packed model, or torch.save's own zip layout
        with zipfile.ZipFile(path) as z:
            if "meta.json" in z.namelist():
                return dict(json.loads(z.read("meta.json")).get("training") or {})
    info = path.resolve().parent.parent / "model_info.json"
    if info.is_file():
        saved = json.loads(info.read_text())
        return {k: saved[k] for k in TRAINING_KEYS if k in saved}
    return {}


def measure_valid_sisnr(model, valid_dir: str, ckpt: dict) -> float:
    import numpy as np

    from sekd.data import UtteranceDataset
    from sekd.train.tasks import valid_sisnr

    data = (ckpt.get("config") or {}).get("data", {})
    valid = UtteranceDataset(
        valid_dir, int(data.get("sample_rate") or 16000), data.get("channels"), int(data.get("ref_channel") or 0)
    )
    return float(np.mean(valid_sisnr(model, valid, range(len(valid)))))


def measure_valid_eer(model, valid_dir: str, ckpt: dict) -> float:
    from sekd.data import TrialUtteranceDataset
    from sekd.train.config import DEFAULTS
    from sekd.train.tasks import valid_eer

    cfg = ckpt.get("config") or {}  # the resolved config training validated with
    data = {**DEFAULTS["data"], **cfg.get("data", {})}
    train = {**DEFAULTS["train"], **cfg.get("train", {})}
    valid = TrialUtteranceDataset(
        valid_dir, int(data["sample_rate"]), data["valid_max_seconds"], max_trials=train["max_valid_trials"]
    )
    return valid_eer(model, valid)


# task -> (the validation score a model of it is selected by, its unit, how to measure it)
VALID_SCORES = {"enh": ("sisnr", "SI-SNR", "dB", measure_valid_sisnr), "sv": ("eer", "EER", "%", measure_valid_eer)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a checkpoint or a sekd-pack zip")
    parser.add_argument("--out_dir", required=True, help="the system dir to make, e.g. exp/teacher")
    parser.add_argument("--role", default="teacher")
    parser.add_argument(
        "--valid_dir", default=None, help="measure the validation score (SI-SNR; speakers: EER) on this data dir"
    )
    parser.add_argument(
        "--expect_valid",
        action="store_true",
        help="error when the measured validation score differs from the recorded one",
    )
    parser.add_argument("--tolerance", type=float, default=0.05, help="dB (EER points), for --expect_valid")
    parser.add_argument("--num_threads", type=int, default=None)
    add_trust_option(parser)
    args = parser.parse_args(argv)
    apply_trust_option(args)
    src, out = Path(args.model), Path(args.out_dir)
    if out.exists():
        print(f"error: {out} exists; remove it to import {src} there", file=sys.stderr)
        return 1
    try:
        ckpt = load_checkpoint(src)
        model = build_from_checkpoint(ckpt, src)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        print(f"error: {src}: cannot load a model from it ({exc})", file=sys.stderr)
        return 1
    if args.num_threads:
        import torch

        torch.set_num_threads(args.num_threads)
    record = training_record(src, ckpt)
    info = {
        "model_name": ckpt["model_name"],
        "model_args": ckpt["model_args"],
        "num_params": sum(p.numel() for p in model.parameters()),
        "role": args.role,
        "seed": ckpt.get("seed"),
        "git_commit": ckpt.get("git_commit"),
        "teacher": None,
        "kd": [],
        "pretrained": {"path": str(src), "sha256": sha256(src)},
        **{k: v for k, v in record.items() if k not in ("git_commit",)},
        "trained_at_commit": record.get("git_commit") or ckpt.get("git_commit"),
    }
    task = getattr(model, "task", "enh")
    if args.valid_dir and task in VALID_SCORES:
        key, what, unit, measure = VALID_SCORES[task]
        measured = measure(model, args.valid_dir, ckpt)
        info[f"measured_valid_{key}"] = measured
        recorded = record.get(f"best_valid_{key}")
        note = f"recorded {recorded:.3f} {unit}" if recorded is not None else "no recorded value"
        print(f"import_model: {src}: validation {what} on {args.valid_dir}: {measured:.3f} {unit} ({note})")
        if args.expect_valid and (recorded is None or abs(measured - recorded) > args.tolerance):
            print(
                f"error: {src}: validation {what} {measured:.3f} {unit} on {args.valid_dir} does not reproduce "
                f"its {note} (tolerance {args.tolerance} {unit}): another validation set, or another model",
                file=sys.stderr,
            )
            return 1
    tmp = out.with_name(f".{out.name}.import.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_atomic({k: ckpt[k] for k in KEEP if k in ckpt} | {"role": args.role}, tmp / "checkpoints" / "best.pt")
    (tmp / "config.yaml").write_text(dump(ckpt.get("config") or {}))
    (tmp / "model_info.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    print(f"import_model: {src} ({info['num_params']:,} parameters) is {out} ({args.role}, not trained here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
