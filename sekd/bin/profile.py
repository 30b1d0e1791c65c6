"""Profile model configs: parameters, MACs per second of audio, CPU RTF, peak memory, latency.

Usage:
    python -m sekd.bin.profile --preset dccrn_cl --config egs/mini/conf/teacher.yaml [--all_presets]
        [--seconds 4] [--no_memory] [--md docs/models.md] [--json profile.json]

``--config`` takes training configs (their ``model:`` section) or checkpoints (``*.pt``).
RTF is the median wall time of one forward pass over ``--seconds`` of audio divided by
that duration, with 1 thread and with all threads. MACs count recurrent and attention
layers (see sekd.models.profile).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path


def _targets(args) -> list[tuple[str, str, dict]]:
    from sekd.models import PRESETS

    targets = []
    names = list(PRESETS) if args.all_presets else (args.preset or [])
    for name in names:
        if name not in PRESETS:
            raise SystemExit(f"error: unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        model, margs = PRESETS[name]
        targets.append((name, model, margs))
    for path in args.config or []:
        if path.endswith(".pt"):
            from sekd.train.checkpoint import load_checkpoint

            ckpt = load_checkpoint(path)
            targets.append((path, ckpt["model_name"], ckpt["model_args"]))
        else:
            from sekd.train.config import build_config

            cfg = build_config([path])
            targets.append((path, cfg["model"]["name"], cfg["model"]["args"]))
    return targets


def table(rows: list[dict]) -> list[str]:
    head = (
        "| config | model | params | GMAC/s | RTF 1 thread | RTF {t} threads | peak mem (MiB) | causal | latency (ms) |"
    )
    lines = [head.format(t=rows[0]["threads"] if rows else "all"), "|" + "---|" * 9]
    for r in rows:
        mem = "-" if r["peak_mem_mib"] is None else f"{r['peak_mem_mib']:.0f}"
        lat = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}"
        lines.append(
            f"| {r['config']} | {r['model']} | {r['params'] / 1e6:.3f} M | {r['macs_per_s'] / 1e9:.3f} | "
            f"{r['rtf_1thread']:.3f} | {r['rtf_all_threads']:.3f} | {mem} | {'yes' if r['causal'] else 'no'} "
            f"| {lat} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="a named paper-size config (see sekd.models.PRESETS)")
    parser.add_argument("--all_presets", action="store_true")
    parser.add_argument("--config", action="append", help="a training config YAML or a checkpoint")
    parser.add_argument("--seconds", type=float, default=4.0, help="input duration for MACs and RTF")
    parser.add_argument("--threads", type=int, default=None, help="'all threads' (default: CPU count)")
    parser.add_argument("--no_memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--md", default=None, help="write the Markdown table here")
    parser.add_argument("--json", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    from sekd.models.profile import profile_model

    targets = _targets(args)
    if not targets:
        parser.error("nothing to profile: give --preset, --all_presets or --config")
    rows = []
    for label, model, margs in targets:
        row = profile_model(model, margs, args.seconds, args.threads, memory=not args.no_memory)
        rows.append({"config": label, **row})
        print(table([rows[-1]])[-1], flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU threads, {platform.processor() or platform.platform()}"
    lines = table(rows) + [
        "",
        f"Measured on {machine}; torch {__import__('torch').__version__}; {args.seconds:g} s of 16 kHz input.",
    ]
    print("\n".join(lines))
    if args.md:
        Path(args.md).write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
