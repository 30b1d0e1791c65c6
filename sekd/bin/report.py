"""Collect every system of a recipe into ``exp/RESULTS.md`` (and ``RESULTS.csv``).

Usage: python -m sekd.bin.report --exp_dir exp [--sets test] [--out exp/RESULTS.md]

A system is a directory ``exp/<system>/`` with ``scoring/<set>/result.json``; its
``model_info.json`` (written by training) gives its role, parameter count and KD terms.
A system without one is the unprocessed input (``noisy``). Rows: noisy input, teachers,
baseline students, KD students; the best value of each metric column is in bold.

Speaker-verification sets (``sekd.bin.score_sv``'s result.json: ``num_trials``, metrics
``eer`` in %, ``mindcf_0.01``, ``mindcf_0.05``; lower is better) get the same table, with the
trial count in the heading and the embedding extraction's real-time factor
(``exp/<system>/embeddings/<set>/rtf``) in the last column; a set ``<set>_asnorm`` (AS-norm
scores) reads the extraction of ``<set>``. Pass ``--primary_metric eer`` (sv.sh does).

The rows (systems of an exp dir, merged over seeds, paired with their baseline and teacher
by ``exp/plan.json``, their gains and paired intervals) come from ``sekd.bin.report_rows``;
this module writes them as tables, CSV and charts.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from sekd.bin.report_rows import (
    ReportError,
    collect,
    curve_line,
    gains,
    paired_gain,
    system_summary,
)
from sekd.metrics import TABLE
from sekd.metrics import metric as metric_info


def _name(m: str) -> str:
    return metric_info(m).display


def _fmt_ci(m: str, ci) -> str:
    """``+0.031 [+0.012, +0.050] *`` (the star: the interval excludes zero)."""
    if ci is None:
        return "n/a"
    return f"{_fmt(m, ci.mean, signed=True)} [{_fmt(m, ci.low, signed=True)}, {_fmt(m, ci.high, signed=True)}]" + (
        " *" if ci.significant else ""
    )


def _fmt_params(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.3f} M"


def _fmt(m: str, v: float | None, signed: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    digits = metric_info(m).digits
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _fmt_gap(gap: float | None) -> str:
    return "-" if gap is None else f"{100 * gap:.0f} %"


def table(rows: list[dict], primary: str | None = None) -> list[str]:
    metrics = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    primary = primary if primary in metrics else (metrics[0] if metrics else None)
    best = {}
    for m in metrics:
        vals = [r["metrics"].get(m) for r in rows if r["metrics"].get(m) is not None]
        if vals:
            best[m] = max(vals) if metric_info(m).higher_is_better else min(vals)
    threads = next((r["costs"]["threads"] for r in rows if r["costs"]), "all")
    pname = _name(primary)
    head = (
        ["System", "Role", "KD (teacher)", "Seeds", "Params", "GMAC/s"]
        + [_name(m) for m in metrics]
        + [f"{pname} gain over baseline", f"{pname} gap closed"]
        + [
            "Train (min)",
            "RTF 1 thread",
            f"RTF {threads} threads",
            "Peak mem (MiB)",
            "Latency (ms)",
            "RTF embed" if any(metric_info(m).task == "sv" for m in metrics) else "RTF enhance",
        ]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        kd = "-"
        if r["kd"]:
            kd = f"{r['kd']} ({r['teacher']})" if r["role"] == "kd" else f"{r['kd']} without a teacher (ablation)"
        elif r.get("pretrained"):
            kd = f"pretrained: {r['pretrained']}"
        cells = [
            r["system"],
            r["role"],
            kd,
            str(r["seeds"]) if r["role"] != "noisy" else "-",
            _fmt_params(r["params"]),
            "-" if r["costs"] is None else f"{r['costs']['macs_per_s'] / 1e9:.3f}",
        ]
        for m in metrics:
            v = r["metrics"].get(m)
            text = "unavailable" if m in r.get("unavailable", {}) else _fmt(m, v)
            if r["spread"].get(m) is not None:
                text += f" ± {_fmt(m, r['spread'][m])}"
            if r["failed"].get(m):
                text += f" ({r['failed'][m]} failed)"
            cells.append(f"**{text}**" if v is not None and v == best.get(m) else text)
        if r["role"] == "kd":
            gain, gap = gains(r, rows, primary)
            ci = paired_gain(r, rows, primary)
            text = _fmt_ci(primary, ci) if ci is not None else _fmt(primary, gain, signed=True)
            cells += [f"{text} ({r.get('baseline') or 'no baseline'})", _fmt_gap(gap)]
        else:
            cells += ["-", "-"]
        cells.append("-" if r["train_min"] is None else f"{r['train_min']:.1f}")
        c = r["costs"]
        if c is None:
            cells += ["-"] * 4
        else:
            cells += [
                f"{c['rtf_1thread']:.3f}",
                f"{c['rtf_all_threads']:.3f}",
                f"{c['peak_mem_mib']:.0f}",
                "-" if c["latency_ms"] is None else f"{c['latency_ms']:.1f}",
            ]
        cells.append("-" if r["rtf"] is None else f"{r['rtf']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def kd_table(rows: list[dict]) -> list[str]:
    """Each KD student against its own baseline and teacher, every metric: gain (gap closed)."""
    kd_rows = [r for r in rows if r["role"] == "kd"]
    if not kd_rows:
        return []
    metrics = list(dict.fromkeys(m for r in kd_rows for m in r["metrics"]))
    head = ["KD student", "Teacher", "Baseline student"] + [_name(m) for m in metrics]
    lines = [
        "Gain of each KD student over its baseline student (same model, no teacher: the plain student, "
        "or the method's no-teacher ablation where it adds losses of its own), better is positive: the "
        "paired mean over seeds and test utterances, its 95 % confidence interval in brackets (two-way "
        "bootstrap over seeds and utterances, each seed of the KD student paired with the same seed of "
        "its baseline; `*`: the interval excludes zero), and in parentheses the share of the "
        "teacher-baseline gap it closes (100 % = as good as the teacher; `-` where the teacher is not "
        "better than the baseline by at least "
        + ", ".join(f"{row.min_gap:g} {row.display}" for m, row in TABLE.items() if m in metrics)
        + "):",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in kd_rows:
        cells = [r["system"], r["teacher"] or "-", r.get("baseline") or "none"]
        for m in metrics:
            gain, gap = gains(r, rows, m)
            ci = paired_gain(r, rows, m)
            text = _fmt_ci(m, ci) if ci is not None else _fmt(m, gain, signed=True)
            cells.append(f"{text} ({_fmt_gap(gap)})")
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted(
        {min(r["seeds"], next((b["seeds"] for b in rows if b["system"] == r.get("baseline")), 0)) for r in kd_rows}
    )
    if seeds == [1]:
        lines += ["", "One seed: the intervals cover the variation over test utterances only, not over training runs."]
    return lines + [""]


def coverage_lines(rows: list[dict]) -> list[str]:
    """A warning for each system scored on other utterances than the set's (a partial estimate list
    scored with --allow_missing, or a scoring of another version of the set): its means are not
    comparable with the other rows'."""
    full = max(r["num_utts"] or 0 for r in rows)
    odd = [r for r in rows if (r["num_utts"] or 0) != full or r.get("num_missing")]
    return [
        f"**Warning**: {r['system']} was scored on {r['num_utts']} of {full} {r['unit']}"
        + (f" ({r['num_missing']} missing)" if r.get("num_missing") else "")
        + ": its row is not comparable with the others."
        for r in odd
    ] + ([""] if odd else [])


def weight_lines(exp_dir: Path) -> list[str]:
    """The KD weight scales chosen on validation (``enh.sh --kd_weight_scales``: ``exp/sweep/*.json``)."""
    lines = []
    for path in sorted((exp_dir / "sweep").glob("*.json")):
        try:
            choice = json.loads(path.read_text())
            lines.append(f"- {path.stem}: weight scale {choice['chosen']:g}, {choice['why']}.")
        except (ValueError, KeyError) as exc:
            lines.append(f"- {path.stem}: unreadable choice {path} ({exc}).")
    return (
        (
            ["KD weights chosen on the validation set (each term's weight times the scale; first seed):", ""]
            + lines
            + [""]
        )
        if lines
        else []
    )


def teacher_lines(rows: list[dict]) -> list[str]:
    """How far each teacher had converged: its best validation score (the one its checkpoint was
    chosen by: PESQ where it was monitored, else SI-SNR or EER) and what its last epochs added."""
    lines = []
    for r in rows:
        line = curve_line(r.get("history") or [], change=True)
        if r["role"] != "teacher" or line is None or len(r["history"]) < 2:
            continue
        where = f" (pretrained: {r['pretrained']})" if r.get("pretrained") else ""
        lines.append(f"- {r['system']}{where}: {line}.")
    return (["Teachers' learning curves (validation set):", ""] + lines + [""]) if lines else []


def _gain_fields(row: dict, rows: list[dict]) -> dict:
    """RESULTS.csv's gain columns of a KD row: ``<metric>_gain``, ``_gain_low``, ``_gain_high``."""
    out = {}
    if row["role"] != "kd":
        return out
    for m in row["metrics"]:
        ci = paired_gain(row, rows, m)
        gain = ci.mean if ci is not None else gains(row, rows, m)[0]
        out[f"{m}_gain"] = gain
        out[f"{m}_gain_low"] = ci.low if ci is not None else None
        out[f"{m}_gain_high"] = ci.high if ci is not None else None
    return out


def panel_rows(rows: list[dict], primary: str, most: int = 5) -> list[dict]:
    """The systems of the spectrogram panel: all of them when few; otherwise the KD student with
    the largest gain in ``primary``, its teacher and its baseline (one family, side by side)."""
    models = [r for r in rows if r["role"] != "noisy"]
    kd_rows = [r for r in models if r["role"] == "kd" and gains(r, rows, primary)[0] is not None]
    if len(models) <= most or not kd_rows:
        return models[:most]
    best = max(kd_rows, key=lambda r: gains(r, rows, primary)[0])
    keep = {best["system"], best.get("teacher_row"), best.get("baseline")}
    return [r for r in models if r["system"] in keep]


def _plots(
    exp_dir: Path,
    md_dir: Path,
    test_set: str,
    rows: list[dict],
    data_dir: str | None,
    utt: str | None,
    primary: str = "pesq_wb",
) -> list[str]:
    """Draw the set's plots; return the Markdown lines that show them."""
    import os

    from sekd.bin.plots import kd_gain_chart, learning_curves, spectrogram_panel

    lines = []
    chart = kd_gain_chart(rows, exp_dir / "plots" / f"kd_gain_{test_set}.png")
    if chart:
        lines += [f"![Gain of each KD student over the baseline student]({os.path.relpath(chart, md_dir)})", ""]
    curves = learning_curves(rows, exp_dir / "plots" / "learning_curves.png")
    if curves:
        lines += [f"![Validation learning curves]({os.path.relpath(curves, md_dir)})", ""]
    if data_dir:
        from sekd.data import read_scp
        from sekd.data.audio import load_audio

        set_dir = Path(data_dir) / test_set
        noisy, clean = read_scp(set_dir / "wav.scp"), read_scp(set_dir / "spk1.scp")
        key = utt or sorted(noisy)[0]
        signals = [("noisy", load_audio(noisy[key].value)), ("clean", load_audio(clean[key].value))]
        for r in panel_rows(rows, primary):
            scp = r["dir"] / "enhanced" / test_set / "wav.scp"
            if scp.exists():
                signals.append((f"{r['system']} ({r['role']})", load_audio(read_scp(scp)[key].value)))
        rate = signals[0][1][1]
        panel = spectrogram_panel(
            [(n, x[0]) for n, (x, _) in signals],
            rate,
            exp_dir / "plots" / f"spectrogram_{test_set}.png",
            f"{test_set}: {key}",
        )
        lines += [f"![Spectrograms of {key}]({os.path.relpath(panel, md_dir)})", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", default="exp")
    parser.add_argument("--sets", default="test", help="comma-separated test sets")
    parser.add_argument("--out", default=None, help="default: <exp_dir>/RESULTS.md")
    parser.add_argument("--title", default=None)
    parser.add_argument(
        "--data_dir",
        default=None,
        help="root of the data dirs (<data_dir>/<set>/wav.scp): enables the spectrogram panel",
    )
    parser.add_argument("--utt", default=None, help="utterance of the spectrogram panel (default: the first)")
    parser.add_argument("--no_plots", action="store_true")
    parser.add_argument(
        "--profile_seconds",
        type=float,
        default=2.0,
        help="audio length of the cost profile (params, MACs, RTF, memory) of each model",
    )
    parser.add_argument(
        "--primary_metric", default="pesq_wb", help="metric of the gain / gap-closed columns of the main table"
    )
    parser.add_argument(
        "--summary",
        metavar="SYSTEM_DIR",
        default=None,
        help="print one line on a trained system (its model_info.json) and exit",
    )
    args = parser.parse_args(argv)
    if args.summary:
        try:
            print(system_summary(Path(args.summary)))
        except ReportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    exp_dir = Path(args.exp_dir)
    out = Path(args.out) if args.out else exp_dir / "RESULTS.md"
    lines = [f"# {args.title or 'Results: ' + str(exp_dir.resolve().parent.name)}", ""]
    from sekd.bin.plan import read_plan

    if read_plan(exp_dir) is None:
        lines += [
            f"**Note**: {exp_dir}/plan.json is missing (the recipe writes it from stage 3 on): every "
            "directory is a row of its own, seeds are not merged and KD students are not paired with a "
            "baseline or teacher.",
            "",
        ]
    csv_rows = []
    sv_sets = se_sets = False
    for test_set in [s for s in args.sets.split(",") if s]:
        try:
            rows = collect(exp_dir, test_set, args.profile_seconds)
        except ReportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if not rows:
            print(f"error: no scored systems for set {test_set!r} under {exp_dir}/*/scoring/", file=sys.stderr)
            return 1
        lines += (
            [f"## {test_set} ({rows[0]['num_utts']} {rows[0]['unit']})", ""] + table(rows, args.primary_metric) + [""]
        )
        lines += coverage_lines(rows)
        reasons = {m: why for r in rows for m, why in r.get("unavailable", {}).items()}
        lines += [f"{_name(m)} unavailable: {why}." for m, why in reasons.items()] + ([""] if reasons else [])
        lines += kd_table(rows) + teacher_lines(rows) + weight_lines(exp_dir)
        sv_set = any(metric_info(m).task == "sv" for r in rows for m in r["metrics"])
        sv_sets = sv_sets or sv_set
        se_sets = se_sets or not sv_set
        if not args.no_plots:
            lines += _plots(
                exp_dir, out.parent, test_set, rows, None if sv_set else args.data_dir, args.utt, args.primary_metric
            )
        for r in rows:
            csv_rows.append(
                {
                    "set": test_set,
                    "system": r["system"],
                    "role": r["role"],
                    "kd": r["kd"],
                    "teacher": r["teacher"],
                    "baseline": r.get("baseline") or "",
                    "seeds": r["seeds"],
                    "params": r["params"],
                    "train_min": r["train_min"],
                    "rtf_enhance": r["rtf"],
                    **{k: v for k, v in (r["costs"] or {}).items() if k not in ("model", "params")},
                    **r["metrics"],
                    **{f"{k}_std": v for k, v in r["spread"].items() if v is not None},
                    **_gain_fields(r, rows),
                }
            )
    if sv_sets:
        lines += [
            "EER (%) and minDCF (p_target 0.01 and 0.05, C_miss = C_fa = 1, normalised) of cosine scores "
            "of embeddings of whole utterances (sets ending in _asnorm: adaptive symmetric score "
            "normalisation against a training-set cohort); lower is better. RTF embed: the extraction "
            "stage over the test set (one thread, file I/O included). Costs from sekd-profile on this "
            "machine: GMAC/s = multiply-accumulates per second of 16 kHz audio; RTF = forward time / audio "
            f"duration on {args.profile_seconds:g} s of input; peak memory of one forward pass. Train: wall "
            "time of one training run (first to last line of its train.log; mean over seeds), including the "
            "KD terms' teacher computations (IML-KD's integrated gradients: train.log's 'KD x s of y s' per "
            "epoch), on whatever else the machine was doing.",
            "",
        ]
    lines += (
        []
        if not se_sets
        else [
            "PESQ-WB / PESQ-NB: ITU-T P.862.2 / P.862 (MOS-LQO); STOI/eSTOI: pystoi; "
            "SI-SDR, SDR (BSS-Eval, "
            "512-tap filter), segSNR in dB; CSIG/CBAK/COVL: Hu & Loizou's composite measures; DNSMOS: P.835 "
            "SIG/BAK/OVRL and P.808 from Microsoft's ONNX models (non-intrusive); L3DAS23: (STOI + 1 - WER) / 2 "
            "with WER of ASR transcripts of enhanced vs clean speech. Costs from sekd-profile on this "
            "machine: GMAC/s = multiply-accumulates per second of 16 kHz audio (recurrent and attention layers "
            "included); RTF = forward time / audio duration on 2 s of input; peak memory of one forward pass; "
            "latency = window + look-ahead of causal models. RTF enhance: the enhancement stage over the test "
            "set (one thread, file I/O included). Train: wall time of one training run (the epochs' wall time in its "
            "model_info.json, else the span of its train.log; mean over seeds; a pretrained teacher: the time its "
            "record gives), on whatever else the machine was doing.",
            "",
        ]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)
    fields = list(dict.fromkeys(k for r in csv_rows for k in r))
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(csv_rows)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
