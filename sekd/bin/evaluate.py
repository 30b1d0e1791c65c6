"""Evaluate any trained models on any test set: enhance, score and compare in one command.

Usage:
    sekd-evaluate --model teacher=egs/mini/pretrained/teacher.zip \\
                  --model dns=egs/dns2020/exp/teacher/checkpoints/best.pt \\
                  --data_dir egs/dns2020/data/test_no_reverb --out_dir eval/dns_no_reverb
    sekd-evaluate --model student.onnx --noisy_dir noisy/ --clean_dir clean/ --out_dir eval/mine

Each ``--model`` (``name=path`` or a path: a checkpoint, a ``sekd-pack`` zip, a TorchScript or
ONNX export) enhances the test set (``sekd-enhance --data_dir``) and is scored against its
clean references with the unprocessed input beside it (``sekd-score``); ``<out_dir>/RESULTS.md``
and ``RESULTS.csv`` compare them (``sekd-report``), one row per model. The test set is a Kaldi
data dir (``wav.scp`` + ``spk1.scp``) or two folders of files paired by name (``--noisy_dir``,
``--clean_dir``; written as ``<out_dir>/data/<set>``). Layout: ``<out_dir>/<name>/enhanced/<set>/``,
``<out_dir>/<name>/scoring/<set>/``, ``<out_dir>/noisy/scoring/<set>/`` (as a recipe's exp dir,
so a rerun replaces only these tools' own outputs). Models trained on one corpus are thus put
side by side on another's test pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sekd.data import DataError
from sekd.data.kaldi_dir import PIPE_NOTE
from sekd.train.checkpoint import add_trust_option, apply_trust_option

DEFAULT_METRICS = "pesq_wb,pesq_nb,stoi,estoi,sisdr,sdr,csig,cbak,covl"


def parse_models(items: list[str]) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).stem, item
        if not name or name == "noisy" or "/" in name:
            raise ValueError(f"--model {item!r}: a name (before '=') other than 'noisy', without '/'")
        if name in models:
            raise ValueError(f"--model {item!r}: the name {name!r} is given twice")
        if not Path(path).is_file():
            raise ValueError(f"--model {item!r}: {path}: no such file")
        models[name] = Path(path)
    return models


def pairs_data_dir(noisy_dir: str, clean_dir: str, out: Path) -> Path:
    """A data dir of the files in ``noisy_dir`` paired by name with those of ``clean_dir``."""
    import soundfile as sf

    from sekd.data.prep import Utt, find_wavs, pair, write_data_dir

    noisy, clean = find_wavs(noisy_dir, recursive=True), find_wavs(clean_dir, recursive=True)
    utts = [
        Utt(k, str(noisy[k].absolute()), k, sf.info(str(noisy[k])).duration, str(clean[k].absolute()))
        for k in pair(noisy, clean, noisy_dir, clean_dir)
    ]
    return write_data_dir(out, utts)


def model_info(path: Path, name: str, system: Path) -> None:
    """``model_info.json`` (and ``config.yaml`` for a checkpoint or zip) of an evaluated model."""
    from sekd.train.config import dump

    info: dict = {"role": "model", "model_name": None, "source": str(path)}
    if path.suffix not in (".onnx", ".ts", ".pt2"):
        try:
            from sekd.train.checkpoint import load_checkpoint

            ckpt = load_checkpoint(path)
            info.update(
                model_name=ckpt.get("model_name"),
                model_args=ckpt.get("model_args"),
                num_params=ckpt.get("num_params"),
                git_commit=ckpt.get("git_commit"),
            )
            if ckpt.get("model_name"):  # the report profiles the model from it
                cfg = dict(ckpt.get("config") or {})
                cfg["model"] = {"name": ckpt["model_name"], "args": ckpt.get("model_args") or {}}
                (system / "config.yaml").write_text(dump(cfg))
        except (OSError, ValueError, RuntimeError):
            pass  # a TorchScript file under another suffix: sekd-enhance reads it; no costs in the table
    (system / "model_info.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PIPE_NOTE
    )
    parser.add_argument("--model", action="append", required=True, help="name=path or path (repeat)")
    parser.add_argument("--data_dir", default=None, help="Kaldi data dir of the test set (wav.scp, spk1.scp)")
    parser.add_argument("--noisy_dir", default=None, help="instead of --data_dir: noisy files ...")
    parser.add_argument("--clean_dir", default=None, help="... and their clean references, paired by name")
    parser.add_argument("--set", default=None, help="the test set's name (default: the data dir's or noisy dir's)")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--metrics", default=DEFAULT_METRICS)
    parser.add_argument("--nj", type=int, default=2, help="scoring processes")
    parser.add_argument("--num_threads", type=int, default=1, help="threads of each enhancement")
    parser.add_argument("--profile_seconds", type=float, default=2.0, help="audio length of the cost profiles")
    add_trust_option(parser)
    args = parser.parse_args(argv)
    apply_trust_option(args)
    from sekd.bin import enhance, report, score

    out = Path(args.out_dir)
    try:
        models = parse_models(args.model)
        if bool(args.data_dir) == bool(args.noisy_dir and args.clean_dir):
            raise ValueError("give the test set as --data_dir, or as --noisy_dir and --clean_dir")
        name = args.set or Path(args.data_dir or args.noisy_dir).resolve().name
        data = (
            Path(args.data_dir)
            if args.data_dir
            else pairs_data_dir(args.noisy_dir, args.clean_dir, out / "data" / name)
        )
    except (ValueError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scored = [("noisy", data / "wav.scp")]
    for model, path in models.items():
        system = out / model
        system.mkdir(parents=True, exist_ok=True)
        model_info(path, model, system)
        enhanced = system / "enhanced" / name
        rc = enhance.main(
            [
                "--checkpoint",
                str(path),
                "--data_dir",
                str(data),
                "--out_dir",
                str(enhanced),
                "--num_threads",
                str(args.num_threads),
            ]
        )
        if rc:
            return rc
        scored.append((model, enhanced / "wav.scp"))
    for system, est in scored:
        rc = score.main(
            [
                "--ref_scp",
                str(data / "spk1.scp"),
                "--est_scp",
                str(est),
                "--out_dir",
                str(out / system / "scoring" / name),
                "--metrics",
                args.metrics,
                "--nj",
                str(args.nj),
            ]
        )
        if rc:
            return rc
    return report.main(
        [
            "--exp_dir",
            str(out),
            "--sets",
            name,
            "--no_plots",
            "--profile_seconds",
            str(args.profile_seconds),
            "--title",
            f"Evaluation on {name} ({data})",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
