"""Pack a trained model into one zip that sekd-enhance and ``sekd.load_pretrained`` take.

Usage:
    sekd-pack --checkpoint exp/student_kd_mtakd/checkpoints/best.pt --out student_kd_mtakd.zip

The zip holds ``model.pt`` (model name, constructor arguments, weights, config, git commit,
seed; no optimizer state, no KD adapters), ``config.yaml``, ``meta.json`` (with ``training``:
the command, commit, wall time, best
validation score and learning curve from the system's ``model_info.json``) and a ``README.md``
with the model's parameters, MACs per second, real-time factor (measured here by
sekd-profile) and its row of the recipe's ``RESULTS.csv`` when there is one
(``--results``, default ``exp/RESULTS.csv`` beside the checkpoint's system dir). Loading
needs no network access.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import zipfile
from pathlib import Path

import torch

from sekd.bin.import_model import training_record
from sekd.train.checkpoint import add_trust_option, apply_trust_option, load_checkpoint
from sekd.train.config import dump

KEEP = ("model_name", "model_args", "state_dict", "config", "git_commit", "seed", "role", "num_params")


def results_row(results: Path, system: str) -> dict | None:
    if not results.is_file():
        return None
    with open(results, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("system") == system]
    return rows[0] if rows else None


def readme(name: str, ckpt: dict, costs: dict | None, row: dict | None, training: dict | None = None) -> str:
    lines = [
        f"# {name}",
        "",
        f"sekd model `{ckpt['model_name']}` ({ckpt.get('role', 'model')}), "
        f"{ckpt.get('num_params', 0):,} parameters, trained at commit `{ckpt.get('git_commit') or 'unknown'}` "
        f"with seed {ckpt.get('seed')}.",
        "",
    ]
    if training:
        best = training.get("best_valid_sisnr")
        lines += [
            f"- trained by `{training.get('command', '?')}`",
            f"- {training.get('epochs', '?')} epochs, {training.get('steps', '?')} steps, "
            f"{(training.get('train_seconds') or 0) / 60:.1f} min of training"
            + (f"; best validation SI-SNR {best:.3f} dB on `{training.get('valid_dir')}`" if best is not None else ""),
            "",
        ]
    if costs:
        latency = "not causal" if costs.get("latency_ms") is None else f"{costs['latency_ms']:.1f} ms"
        lines += [
            f"- {costs['macs_per_s'] / 1e9:.3f} GMAC per second of audio",
            f"- real-time factor {costs['rtf_1thread']:.3f} on one CPU thread (where it was packed)",
            f"- algorithmic latency: {latency}",
            "",
        ]
    if row:
        metrics = {k: v for k, v in row.items() if v not in ("", None) and k not in ("set", "system")}
        lines += [
            f"Results on `{row.get('set')}` (from RESULTS.csv):",
            "",
            "| " + " | ".join(metrics) + " |",
            "|" + "---|" * len(metrics),
            "| " + " | ".join(metrics.values()) + " |",
            "",
        ]
    lines += [
        "Use:",
        "",
        "```sh",
        f"sekd-enhance --checkpoint {name}.zip noisy.wav",
        "```",
        "",
        "```python",
        "import sekd",
        f"enhancer = sekd.load_pretrained('{name}.zip')",
        "clean = enhancer(noisy, rate)  # numpy [T] or [C, T] at any rate",
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True, help="the zip to write")
    parser.add_argument("--name", default=None, help="default: the system dir's name")
    parser.add_argument("--results", default=None, help="RESULTS.csv with the model's row")
    parser.add_argument("--no_profile", action="store_true", help="skip measuring MACs and RTF")
    add_trust_option(parser)
    args = parser.parse_args(argv)
    apply_trust_option(args)
    ckpt_path = Path(args.checkpoint)
    try:
        ckpt = load_checkpoint(ckpt_path)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    missing = [k for k in ("model_name", "model_args", "state_dict") if k not in ckpt]
    if missing:
        print(f"error: {ckpt_path}: not a sekd checkpoint (no {missing[0]!r})", file=sys.stderr)
        return 1
    system_dir = ckpt_path.resolve().parents[1]
    name = args.name or system_dir.name
    packed = {k: ckpt[k] for k in KEEP if k in ckpt}
    costs = None
    if not args.no_profile:
        from sekd.models.profile import profile_model

        costs = profile_model(ckpt["model_name"], ckpt["model_args"], seconds=2.0)
    row = results_row(Path(args.results) if args.results else system_dir.parent / "RESULTS.csv", name)
    training = training_record(ckpt_path, ckpt)
    meta = {
        "name": name,
        "model_name": ckpt["model_name"],
        "num_params": ckpt.get("num_params"),
        "training": training,
        "sample_rate": (ckpt.get("config") or {}).get("data", {}).get("sample_rate"),
        "channels": (ckpt.get("config") or {}).get("data", {}).get("channels"),
        "git_commit": ckpt.get("git_commit"),
        "seed": ckpt.get("seed"),
        "costs": costs,
        "results": row,
    }
    buf = io.BytesIO()
    torch.save(packed, buf)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.pt", buf.getvalue())
        z.writestr("config.yaml", dump(ckpt.get("config") or {}))
        z.writestr("meta.json", json.dumps(meta, indent=2, default=str) + "\n")
        z.writestr("README.md", readme(name, ckpt, costs, row, training))
    tmp.replace(out)
    print(f"packed {name} ({ckpt.get('num_params', 0):,} parameters) into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
