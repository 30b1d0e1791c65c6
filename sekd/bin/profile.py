"""Profile model configs: parameters, MACs per second of audio, CPU RTF, peak memory, latency.

Usage:
    python -m sekd.bin.profile --preset dccrn_cl --config egs/mini/conf/teacher.yaml [--all_presets]
        [--seconds 4 20] [--sgemm] [--train_step] [--no_memory] [--md table.md] [--json profile.json]

``--config`` takes training configs (their ``model:`` section) or checkpoints (``*.pt``).
RTF is the median wall time of one forward pass over ``--seconds`` of audio divided by
that duration, with 1 thread and with all threads. ``--sgemm`` measures the machine's
one-thread matmul rate in the same run and adds each model's MAC-bound RTF and the ratio
of its RTF to that limit; ``--train_step`` adds one training step's time. MACs count recurrent and attention
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


def _fmt(value, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def table(rows: list[dict]) -> list[str]:
    head = (
        "| config | model | params | input (s) | GMAC/s | RTF 1 thread | RTF {t} threads | MAC-bound RTF "
        "| ratio | train step (s) | peak mem (MiB) | causal | latency (ms) |"
    )
    lines = [head.format(t=rows[0]["threads"] if rows else "all"), "|" + "---|" * 13]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['model']} | {r['params'] / 1e6:.3f} M | {r['seconds']:g} "
            f"| {r['macs_per_s'] / 1e9:.3f} | {r['rtf_1thread']:.3f} | {r['rtf_all_threads']:.3f} "
            f"| {_fmt(r.get('mac_bound_rtf'), '.3f')} | {_fmt(r.get('limit_ratio'), '.1f')}"
            f"{'' if r.get('limit_ratio') is None else 'x'} | {_fmt(r.get('train_step_s'), '.3f')} "
            f"| {_fmt(r['peak_mem_mib'], '.0f')} | {'yes' if r['causal'] else 'no'} | {_fmt(r['latency_ms'], '.1f')} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="a named paper-size config (see sekd.models.PRESETS)")
    parser.add_argument("--all_presets", action="store_true")
    parser.add_argument("--config", action="append", help="a training config YAML or a checkpoint")
    parser.add_argument(
        "--seconds", type=float, nargs="+", default=[4.0], help="input duration(s) for MACs and RTF (one row each)"
    )
    parser.add_argument(
        "--sgemm",
        action="store_true",
        help="measure the 1-thread sgemm rate first and add the MAC-bound RTF (2 x MACs/s / rate) and the ratio",
    )
    parser.add_argument(
        "--train_step", action="store_true", help="add the time of one training step (1 thread, Adam, L1 loss)"
    )
    parser.add_argument("--train_seconds", type=float, default=2.0, help="training-step crop length")
    parser.add_argument("--train_batch", type=int, default=4, help="training-step batch size")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (the median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="'all threads' (default: CPU count)")
    parser.add_argument("--no_memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--md", default=None, help="write the Markdown table here")
    parser.add_argument("--json", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    from sekd.models.profile import profile_model

    targets = _targets(args)
    if not targets:
        parser.error("nothing to profile: give --preset, --all_presets or --config")
    sgemm = {}
    if args.sgemm:
        from sekd.models.profile import sgemm_gflops

        sgemm = {n: sgemm_gflops(n) for n in sorted({1, args.threads or os.cpu_count() or 1})}  # each rate once
        print("sgemm (1024^3, torch): " + ", ".join(f"{v:.1f} GFLOP/s on {k} thread(s)" for k, v in sgemm.items()))
    rows = []
    for label, model, margs in targets:
        for seconds in args.seconds:
            row = profile_model(
                model,
                margs,
                seconds,
                args.threads,
                memory=not args.no_memory,
                sgemm=sgemm.get(1),
                train_step=(args.train_seconds, args.train_batch)
                if args.train_step and seconds == args.seconds[0]
                else None,
                repeats=args.repeats,
            )
            rows.append({"config": label, **row})
            print(table([rows[-1]])[-1], flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU threads, {platform.processor() or platform.platform()}"
    lines = table(rows) + [
        "",
        f"Measured on {machine}; torch {__import__('torch').__version__}; 16 kHz input of "
        f"{', '.join(f'{s:g}' for s in args.seconds)} s; medians of {args.repeats} runs.",
    ]
    if sgemm:
        lines.append(
            "MAC-bound RTF = 2 x MACs per second of audio / the 1-thread sgemm rate measured in this run ("
            + ", ".join(f"{v:.1f} GFLOP/s on {k} thread(s)" for k, v in sgemm.items())
            + "); ratio = RTF 1 thread / MAC-bound RTF."
        )
    if args.train_step:
        lines.append(
            f"Train step: forward, L1 loss, backward and Adam step on {args.train_batch} x {args.train_seconds:g} s, "
            "1 thread (on the first input length's row)."
        )
    print("\n".join(lines))
    if args.md:
        Path(args.md).write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
