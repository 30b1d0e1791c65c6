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
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np

from sekd.metrics import DISPLAY

ROLE_ORDER = {"noisy": 0, "teacher": 1, "student": 2, "kd": 3}
LOWER_IS_BETTER: set[str] = {"llr", "wss", "wer", "eer", "mindcf_0.01", "mindcf_0.05"}
SV_METRICS: set[str] = {"eer", "mindcf_0.01", "mindcf_0.05"}
DB_METRICS: set[str] = {"sisdr", "sdr", "segsnr", "wss"}  # shown with 2 decimals
# The share of the teacher-baseline gap a KD student closes is shown only where the teacher
# beats the baseline by at least this much: a tiny gap turns noise into +-1000 %.
MIN_GAP = {"pesq_wb": 0.02, "pesq_nb": 0.02, "stoi": 0.005, "estoi": 0.005, "sisdr": 0.2, "sdr": 0.2,
           "segsnr": 0.2, "csig": 0.02, "cbak": 0.02, "covl": 0.02, "llr": 0.01, "wss": 0.5,
           "dnsmos_sig": 0.02, "dnsmos_bak": 0.02, "dnsmos_ovrl": 0.02, "dnsmos_p808": 0.02, "wer": 0.005,
           "l3das23": 0.005, "eer": 0.1, "mindcf_0.01": 0.005, "mindcf_0.05": 0.005}
_COST_CACHE: dict[str, dict] = {}


def model_costs(system_dir: Path, seconds: float = 2.0) -> dict | None:
    """sekd-profile's figures for a system's model, rebuilt from its config.yaml.

    Kept in ``<system>/costs.json`` (with the config and the audio length they were measured
    with), so a rerun of the report does not profile again.
    """
    conf = system_dir / "config.yaml"
    if not conf.exists():
        return None
    if str(conf) not in _COST_CACHE:
        from sekd.train.config import yaml_load

        cfg = yaml_load(conf.read_text())
        key = {"model": cfg["model"], "seconds": seconds}
        cache = system_dir / "costs.json"
        try:
            saved = json.loads(cache.read_text())
            costs = saved["costs"] if saved["key"] == key else None
        except (OSError, ValueError, KeyError):
            costs = None
        if costs is None:
            from sekd.models.profile import profile_model

            costs = profile_model(cfg["model"]["name"], cfg["model"]["args"], seconds=seconds)
            tmp = cache.with_suffix(".json.tmp")
            tmp.write_text(json.dumps({"key": key, "costs": costs}, indent=1) + "\n")
            tmp.replace(cache)
        _COST_CACHE[str(conf)] = costs
    return _COST_CACHE[str(conf)]


SEED_SUFFIX = re.compile(r"_seed\d+$")


def train_minutes(system_dir: Path) -> float | None:
    """Wall time of a system's training: first to last time stamp of its ``train.log`` (minutes)."""
    from datetime import datetime

    log = system_dir / "train.log"
    if not log.exists():
        return None
    stamps = []
    for line in log.read_text().splitlines():
        try:
            stamps.append(datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
    return (stamps[-1] - stamps[0]).total_seconds() / 60 if len(stamps) > 1 else None


def _system_row(system_dir: Path, test_set: str) -> dict:
    result = system_dir / "scoring" / test_set / "result.json"
    summary = json.loads(result.read_text())
    info_path = system_dir / "model_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {"role": "noisy"}
    rtf_path = system_dir / "enhanced" / test_set / "rtf"
    if "num_trials" in summary:  # speaker verification: the embedding extraction's RTF
        rtf_path = system_dir / "embeddings" / re.sub(r"_asnorm$", "", test_set) / "rtf"
    return {
        "system": SEED_SUFFIX.sub("", system_dir.name),
        "role": info.get("role", "model"),
        "model": json.dumps([info.get("model_name"), info.get("model_args")], sort_keys=True),
        "params": info.get("num_params"),
        "kd": ",".join(info.get("kd") or []),
        "teacher": Path(info["teacher"]).parents[1].name if info.get("teacher") else "",
        "rtf": float(rtf_path.read_text()) if rtf_path.exists() else None,
        "dir": system_dir,
        "train_min": train_minutes(system_dir),
        "num_utts": summary.get("num_utts", summary.get("num_trials")),
        "unit": "trials" if "num_trials" in summary else "utterances",
        "metrics": {k: v["mean"] for k, v in summary["metrics"].items()},
        "failed": {k: v["failed"] for k, v in summary["metrics"].items()},
        "unavailable": {k: v["unavailable"] for k, v in summary["metrics"].items() if v.get("unavailable")},
    }


def _merge_seeds(runs: list[dict]) -> dict:
    """One row for the runs of one system over several seeds: mean, and the spread (sample std)."""
    row = dict(runs[0])
    row["seeds"] = len(runs)
    times = [r["train_min"] for r in runs if r["train_min"] is not None]
    row["train_min"] = float(np.mean(times)) if times else None
    row["spread"] = {}
    for m in row["metrics"]:
        vals = np.array([r["metrics"].get(m) for r in runs], dtype=float)
        row["metrics"] = {**row["metrics"], m: float(np.nanmean(vals)) if np.isfinite(vals).any() else None}
        row["spread"][m] = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else None
        row["failed"] = {**row["failed"], m: sum(r["failed"].get(m, 0) for r in runs)}
    return row


def _pair_baselines(rows: list[dict]) -> None:
    """Give each KD row its baseline student (same model, no KD) and its teacher's row."""
    by_system = {r["system"]: r for r in rows}
    for r in rows:
        if r["role"] != "kd":
            continue
        base = [b for b in rows if b["role"] == "student" and b["model"] == r["model"]]
        r["baseline"] = base[0]["system"] if base else None
        r["teacher_row"] = r["teacher"] if r["teacher"] in by_system else None


def collect(exp_dir: Path, test_set: str, profile_seconds: float = 2.0) -> list[dict]:
    """The scored systems of ``test_set``; runs of one system with several seeds (``<system>_seed<N>``)
    become one row with the mean (``seeds``: how many, ``spread``: their standard deviation)."""
    groups: dict[str, list[dict]] = {}
    for result in sorted(exp_dir.glob(f"*/scoring/{test_set}/result.json")):
        row = _system_row(result.parents[2], test_set)
        groups.setdefault(row["system"], []).append(row)
    rows = [_merge_seeds(runs) for runs in groups.values()]
    for r in rows:  # the costs of a model do not depend on its seed: profile one run
        r["costs"] = model_costs(r["dir"], profile_seconds) if r["role"] != "noisy" else None
    rows.sort(key=lambda r: (ROLE_ORDER.get(r["role"], 9), r["system"]))
    _pair_baselines(rows)
    return rows


def gains(row: dict, rows: list[dict], metric: str) -> tuple[float | None, float | None]:
    """(KD minus baseline, share of the teacher-baseline gap closed) of ``metric`` for a KD row."""
    by_system = {r["system"]: r for r in rows}
    base, teacher = by_system.get(row.get("baseline") or ""), by_system.get(row.get("teacher_row") or "")
    value = row["metrics"].get(metric)
    if base is None or value is None or base["metrics"].get(metric) is None:
        return None, None
    sign = -1 if metric in LOWER_IS_BETTER else 1
    gain = sign * (value - base["metrics"][metric])
    gap = None
    if teacher is not None and teacher["metrics"].get(metric) is not None:
        width = sign * (teacher["metrics"][metric] - base["metrics"][metric])
        gap = gain / width if width >= MIN_GAP.get(metric, 1e-9) else None
    return gain, gap


def _fmt_params(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.3f} M"


def _fmt(m: str, v: float | None, signed: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    digits = 2 if m in DB_METRICS else 4 if m.startswith("mindcf") else 3
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
            best[m] = min(vals) if m in LOWER_IS_BETTER else max(vals)
    threads = next((r["costs"]["threads"] for r in rows if r["costs"]), "all")
    pname = DISPLAY.get(primary, primary)
    head = (["System", "Role", "KD (teacher)", "Seeds", "Params", "GMAC/s"] + [DISPLAY.get(m, m) for m in metrics]
            + [f"{pname} gain over baseline", f"{pname} gap closed"]
            + ["Train (min)", "RTF 1 thread", f"RTF {threads} threads", "Peak mem (MiB)", "Latency (ms)",
               "RTF embed" if SV_METRICS & set(metrics) else "RTF enhance"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["system"], r["role"], f"{r['kd']} ({r['teacher']})" if r["kd"] else "-",
                 str(r["seeds"]) if r["role"] != "noisy" else "-", _fmt_params(r["params"]),
                 "-" if r["costs"] is None else f"{r['costs']['macs_per_s'] / 1e9:.3f}"]
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
            cells += [f"{_fmt(primary, gain, signed=True)} ({r.get('baseline') or 'no baseline'})", _fmt_gap(gap)]
        else:
            cells += ["-", "-"]
        cells.append("-" if r["train_min"] is None else f"{r['train_min']:.1f}")
        c = r["costs"]
        if c is None:
            cells += ["-"] * 4
        else:
            cells += [f"{c['rtf_1thread']:.3f}", f"{c['rtf_all_threads']:.3f}", f"{c['peak_mem_mib']:.0f}",
                      "-" if c["latency_ms"] is None else f"{c['latency_ms']:.1f}"]
        cells.append("-" if r["rtf"] is None else f"{r['rtf']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def kd_table(rows: list[dict]) -> list[str]:
    """Each KD student against its own baseline and teacher, every metric: gain (gap closed)."""
    kd_rows = [r for r in rows if r["role"] == "kd"]
    if not kd_rows:
        return []
    metrics = list(dict.fromkeys(m for r in kd_rows for m in r["metrics"]))
    head = ["KD student", "Teacher", "Baseline student"] + [DISPLAY.get(m, m) for m in metrics]
    lines = ["Gain of each KD student over its baseline student (same model, no KD), and in brackets the "
             "share of the teacher-baseline gap it closes (100 % = as good as the teacher; negative = worse "
             "than without KD; `-` where the teacher is not better than the baseline by at least "
             + ", ".join(f"{v:g} {DISPLAY.get(m, m)}" for m, v in MIN_GAP.items() if m in metrics) + "):", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in kd_rows:
        cells = [r["system"], r["teacher"] or "-", r.get("baseline") or "none"]
        for m in metrics:
            gain, gap = gains(r, rows, m)
            cells.append(f"{_fmt(m, gain, signed=True)} ({_fmt_gap(gap)})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


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


def _plots(exp_dir: Path, md_dir: Path, test_set: str, rows: list[dict], data_dir: str | None,
           utt: str | None, primary: str = "pesq_wb") -> list[str]:
    """Draw the set's plots; return the Markdown lines that show them."""
    import os

    from sekd.bin.plots import kd_gain_chart, spectrogram_panel

    lines = []
    chart = kd_gain_chart(rows, exp_dir / "plots" / f"kd_gain_{test_set}.png")
    if chart:
        lines += [f"![Gain of each KD student over the baseline student]({os.path.relpath(chart, md_dir)})", ""]
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
        panel = spectrogram_panel([(n, x[0]) for n, (x, _) in signals], rate,
                                  exp_dir / "plots" / f"spectrogram_{test_set}.png", f"{test_set}: {key}")
        lines += [f"![Spectrograms of {key}]({os.path.relpath(panel, md_dir)})", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", default="exp")
    parser.add_argument("--sets", default="test", help="comma-separated test sets")
    parser.add_argument("--out", default=None, help="default: <exp_dir>/RESULTS.md")
    parser.add_argument("--title", default=None)
    parser.add_argument("--data_dir", default=None,
                        help="root of the data dirs (<data_dir>/<set>/wav.scp): enables the spectrogram panel")
    parser.add_argument("--utt", default=None, help="utterance of the spectrogram panel (default: the first)")
    parser.add_argument("--no_plots", action="store_true")
    parser.add_argument("--profile_seconds", type=float, default=2.0,
                        help="audio length of the cost profile (params, MACs, RTF, memory) of each model")
    parser.add_argument("--primary_metric", default="pesq_wb",
                        help="metric of the gain / gap-closed columns of the main table")
    args = parser.parse_args(argv)
    exp_dir = Path(args.exp_dir)
    out = Path(args.out) if args.out else exp_dir / "RESULTS.md"
    lines = [f"# {args.title or 'Results: ' + str(exp_dir.resolve().parent.name)}", ""]
    csv_rows = []
    sv_sets = se_sets = False
    for test_set in [s for s in args.sets.split(",") if s]:
        rows = collect(exp_dir, test_set, args.profile_seconds)
        if not rows:
            print(f"error: no scored systems for set {test_set!r} under {exp_dir}/*/scoring/", file=sys.stderr)
            return 1
        lines += [f"## {test_set} ({rows[0]['num_utts']} {rows[0]['unit']})", ""] + table(rows, args.primary_metric) + [""]
        reasons = {m: why for r in rows for m, why in r.get("unavailable", {}).items()}
        lines += [f"{DISPLAY.get(m, m)} unavailable: {why}." for m, why in reasons.items()] + ([""] if reasons else [])
        lines += kd_table(rows)
        sv_set = any(SV_METRICS & set(r["metrics"]) for r in rows)
        sv_sets = sv_sets or sv_set
        se_sets = se_sets or not sv_set
        if not args.no_plots:
            lines += _plots(exp_dir, out.parent, test_set, rows, None if sv_set else args.data_dir, args.utt,
                            args.primary_metric)
        for r in rows:
            csv_rows.append({"set": test_set, "system": r["system"], "role": r["role"], "kd": r["kd"],
                             "teacher": r["teacher"], "baseline": r.get("baseline") or "", "seeds": r["seeds"],
                             "params": r["params"], "train_min": r["train_min"], "rtf_enhance": r["rtf"],
                             **{k: v for k, v in (r["costs"] or {}).items() if k not in ("model", "params")},
                             **r["metrics"], **{f"{k}_std": v for k, v in r["spread"].items() if v is not None}})
    if sv_sets:
        lines += ["EER (%) and minDCF (p_target 0.01 and 0.05, C_miss = C_fa = 1, normalised) of cosine scores "
                  "of embeddings of whole utterances (sets ending in _asnorm: adaptive symmetric score "
                  "normalisation against a training-set cohort); lower is better. RTF embed: the extraction "
                  "stage over the test set (one thread, file I/O included). Costs from sekd-profile on this "
                  "machine: GMAC/s = multiply-accumulates per second of 16 kHz audio; RTF = forward time / audio "
                  f"duration on {args.profile_seconds:g} s of input; peak memory of one forward pass. Train: wall "
                  "time of one training run (first to last line of its train.log; mean over seeds), including the "
                  "KD terms' teacher computations (IML-KD's integrated gradients: train.log's 'KD x s of y s' per "
                  "epoch), on whatever else the machine was doing.", ""]
    lines += [] if not se_sets else ["PESQ-WB / PESQ-NB: ITU-T P.862.2 / P.862 (MOS-LQO); STOI/eSTOI: pystoi; SI-SDR, SDR (BSS-Eval, "
              "512-tap filter), segSNR in dB; CSIG/CBAK/COVL: Hu & Loizou's composite measures; DNSMOS: P.835 "
              "SIG/BAK/OVRL and P.808 from Microsoft's ONNX models (non-intrusive); L3DAS23: (STOI + 1 - WER) / 2 "
              "with WER of ASR transcripts of enhanced vs clean speech. Costs from sekd-profile on this "
              "machine: GMAC/s = multiply-accumulates per second of 16 kHz audio (recurrent and attention layers "
              "included); RTF = forward time / audio duration on 2 s of input; peak memory of one forward pass; "
              "latency = window + look-ahead of causal models. RTF enhance: the enhancement stage over the test "
              "set (one thread, file I/O included). Train: wall time of one training run (first to last line of its "
              "train.log; mean over seeds), on whatever else the machine was doing.", ""]
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
