"""The rows of the report: the scored systems of an exp dir as ``exp/plan.json`` names them.

``collect(exp_dir, test_set)`` reads each ``exp/<system>/scoring/<set>/result.json`` with the
system's ``model_info.json`` (role, size, KD terms, training time, learning curve) and cost
profile, merges the seeds of one system (mean and spread), and pairs each KD student with its
baseline and teacher as the plan says; ``gains``/``paired_gain`` give a KD row's gain over its
baseline (paired per utterance and seed, with a 95 % interval) and the share of the gap closed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from sekd.metrics import metric as metric_info

ROLE_ORDER = {"noisy": 0, "teacher": 1, "student": 2, "kd": 3}
# Each metric's direction, digits and minimum gap are its row of sekd.metrics.TABLE: the share of
# the teacher-baseline gap a KD student closes is shown only where the teacher beats the baseline
# by at least ``min_gap`` (a tiny gap turns noise into +-1000 %).


def _sign(m: str) -> float:
    """+1 where higher is better, -1 where lower is (EER, WER, LLR, WSS, minDCF)."""
    return 1.0 if metric_info(m).higher_is_better else -1.0


_COST_CACHE: dict[str, dict] = {}  # costs by model config: systems of one architecture are profiled once


def model_costs(system_dir: Path, seconds: float = 2.0) -> dict | None:
    """sekd-profile's figures for a system's model, rebuilt from its config.yaml.

    Kept in ``<system>/costs.json`` (with the config and the audio length they were measured
    with), so a rerun of the report does not profile again; systems with the same model config
    (a baseline student and its KD students) share one profile.
    """
    conf = system_dir / "config.yaml"
    if not conf.exists():
        return None
    from sekd.train.config import yaml_load

    cfg = yaml_load(conf.read_text()) or {}
    if not (cfg.get("model") or {}).get("name"):
        return None
    key = {"model": cfg["model"], "seconds": seconds}
    memo = json.dumps(key, sort_keys=True)
    cache = system_dir / "costs.json"
    try:
        saved = json.loads(cache.read_text())
        costs = saved["costs"] if saved["key"] == key else None
    except (OSError, ValueError, KeyError):
        costs = None
    if costs is None:
        costs = _COST_CACHE.get(memo)
        if costs is None:
            from sekd.models.profile import profile_model

            costs = profile_model(cfg["model"]["name"], cfg["model"]["args"], seconds=seconds)
        tmp = cache.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"key": key, "costs": costs}, indent=1) + "\n")
        tmp.replace(cache)
    _COST_CACHE[memo] = costs
    return costs


class ReportError(ValueError):
    """A file the report reads is damaged: the message names it."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(
            f"{path}: not readable JSON ({exc}); rerun the step that wrote it (remove the .done beside it)"
        ) from None


def _system_row(system_dir: Path, test_set: str, plan: dict[str, dict] | None = None) -> dict:
    result = system_dir / "scoring" / test_set / "result.json"
    summary = _read_json(result)
    info_path = system_dir / "model_info.json"
    info = _read_json(info_path) if info_path.exists() else {"role": "noisy"}
    rtf_path = system_dir / "enhanced" / test_set / "rtf"
    if "num_trials" in summary:  # speaker verification: the embedding extraction's RTF
        rtf_path = system_dir / "embeddings" / re.sub(r"_asnorm$", "", test_set) / "rtf"
    # The plan says what a system is (group of seeds, seed, teacher); a directory it does not name
    # (the noisy input, a user's own system) is a row of its own, paired with nothing.
    entry = (plan or {}).get(system_dir.name) or {"group": system_dir.name, "seed": None}
    group, seed, teacher = entry["group"], entry["seed"], entry.get("teacher") or ""
    return {
        "system": group,
        "run": system_dir.name,
        "seed": seed,
        "role": info.get("role", "model"),
        "model": json.dumps([info.get("model_name"), info.get("model_args")], sort_keys=True),
        "params": info.get("num_params"),
        "kd": ",".join(info.get("kd") or []),
        "teacher": teacher,
        "pretrained": (info.get("pretrained") or {}).get("path"),
        "history": info.get("history") or [],
        "rtf": float(rtf_path.read_text()) if rtf_path.exists() else None,
        "dir": system_dir,
        "scoring": system_dir / "scoring" / test_set,
        "train_min": float(info["train_seconds"]) / 60 if info.get("train_seconds") else None,
        "num_utts": summary.get("num_utts", summary.get("num_trials")),
        "num_missing": summary.get("num_missing", 0),
        "unit": "trials" if "num_trials" in summary else "utterances",
        "metrics": {k: v["mean"] for k, v in summary["metrics"].items()},
        "failed": {k: v["failed"] for k, v in summary["metrics"].items()},
        "unavailable": {k: v["unavailable"] for k, v in summary["metrics"].items() if v.get("unavailable")},
    }


def _merge_seeds(runs: list[dict]) -> dict:
    """One row for the runs of one system over several seeds: mean, and the spread (sample std)."""
    runs = sorted(runs, key=lambda r: r["seed"] if r["seed"] is not None else -1)
    row = dict(runs[0])
    row["seeds"] = len(runs)
    row["runs"] = [{"seed": r["seed"], "run": r["run"], "scoring": r["scoring"]} for r in runs]
    times = [r["train_min"] for r in runs if r["train_min"] is not None]
    row["train_min"] = float(np.mean(times)) if times else None
    row["spread"] = {}
    for m in row["metrics"]:
        vals = np.array([r["metrics"].get(m) for r in runs], dtype=float)
        row["metrics"] = {**row["metrics"], m: float(np.nanmean(vals)) if np.isfinite(vals).any() else None}
        row["spread"][m] = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else None
        row["failed"] = {**row["failed"], m: sum(r["failed"].get(m, 0) for r in runs)}
    return row


def _pair_baselines(rows: list[dict], plan: dict[str, dict] | None = None) -> None:
    """Give each KD row its baseline student and its teacher's row, as the plan (``exp/plan.json``)
    names them: the plain student of the same model, or the method's no-teacher ablation."""
    by_system = {r["system"]: r for r in rows}
    for r in rows:
        if r["role"] != "kd":
            continue
        entry = (plan or {}).get(r["run"]) or {}
        base = plan[entry["baseline"]]["group"] if entry.get("baseline") in (plan or {}) else None
        r["baseline"] = base if base in by_system else None
        r["teacher_row"] = r["teacher"] if r["teacher"] in by_system else None


def collect(exp_dir: Path, test_set: str, profile_seconds: float = 2.0) -> list[dict]:
    """The scored systems of ``test_set``; runs of one system with several seeds (``<system>_seed<N>``)
    become one row with the mean (``seeds``: how many, ``spread``: their standard deviation)."""
    from sekd.bin.plan import read_plan

    plan = read_plan(exp_dir)
    groups: dict[str, list[dict]] = {}
    for result in sorted(exp_dir.glob(f"*/scoring/{test_set}/result.json")):
        row = _system_row(result.parents[2], test_set, plan)
        groups.setdefault(row["system"], []).append(row)
    rows = [_merge_seeds(runs) for runs in groups.values()]
    for r in rows:  # the costs of a model do not depend on its seed: profile one run
        r["costs"] = model_costs(r["dir"], profile_seconds) if r["role"] != "noisy" else None
    rows.sort(key=lambda r: (ROLE_ORDER.get(r["role"], 9), r["system"]))
    _pair_baselines(rows, plan)
    return rows


def _utt_scores(scoring: Path, metric: str) -> dict[str, float] | None:
    path = scoring / f"{metric}.scp"
    if not path.is_file():
        return None
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, value = line.split(maxsplit=1)
            out[key] = float(value)
    return out


_CI_CACHE: dict[tuple, object] = {}


def paired_gain(row: dict, rows: list[dict], metric: str):
    """The KD row's gain in ``metric`` over its baseline with its paired 95 % interval
    (``sekd.metrics.paired``), seeds paired by number; None without per-utterance scores."""
    from sekd.metrics.paired import paired_bootstrap, paired_differences

    by_system = {r["system"]: r for r in rows}
    base = by_system.get(row.get("baseline") or "")
    if base is None or metric_info(metric).task == "sv":
        return None
    key = (row["system"], base["system"], metric, str(row["runs"][0]["scoring"]))
    if key not in _CI_CACHE:
        base_runs = {r["seed"]: r for r in base["runs"]}
        pairs = [(r, base_runs[r["seed"]]) for r in row["runs"] if r["seed"] in base_runs]
        kd = [_utt_scores(k["scoring"], metric) for k, _ in pairs]
        bs = [_utt_scores(b["scoring"], metric) for _, b in pairs]
        result = None
        if pairs and all(x is not None for x in kd + bs):
            d = paired_differences(kd, bs, _sign(metric))
            result = paired_bootstrap(d) if d.size else None
        _CI_CACHE[key] = result
    return _CI_CACHE[key]


def teacher_gap(row: dict, rows: list[dict], metric: str) -> float | None:
    """Teacher minus baseline student (better is positive) of a KD row, in ``metric``."""
    by_system = {r["system"]: r for r in rows}
    base, teacher = by_system.get(row.get("baseline") or ""), by_system.get(row.get("teacher_row") or "")
    if base is None or teacher is None or None in (base["metrics"].get(metric), teacher["metrics"].get(metric)):
        return None
    return _sign(metric) * (teacher["metrics"][metric] - base["metrics"][metric])


def gains(row: dict, rows: list[dict], metric: str) -> tuple[float | None, float | None]:
    """(KD minus baseline, share of the teacher-baseline gap closed) of ``metric`` for a KD row: the
    paired mean over seeds and utterances where per-utterance scores exist, else the difference of
    the systems' means."""
    by_system = {r["system"]: r for r in rows}
    base, teacher = by_system.get(row.get("baseline") or ""), by_system.get(row.get("teacher_row") or "")
    value = row["metrics"].get(metric)
    if base is None or value is None or base["metrics"].get(metric) is None:
        return None, None
    sign = _sign(metric)
    ci = paired_gain(row, rows, metric)
    gain = ci.mean if ci is not None else sign * (value - base["metrics"][metric])
    gap = None
    if teacher is not None and teacher["metrics"].get(metric) is not None:
        width = sign * (teacher["metrics"][metric] - base["metrics"][metric])
        gap = gain / width if width >= metric_info(metric).min_gap else None
    return gain, gap


def system_summary(system_dir: Path) -> str:
    """One line on a trained system from its ``model_info.json`` (what the recipe logs after a
    training): the best validation score, its epoch, and the training time."""
    info = _read_json(system_dir / "model_info.json")
    hist = info.get("history") or []
    line = curve_line(hist)
    minutes = f", {info['train_seconds'] / 60:.1f} min" if info.get("train_seconds") else ""
    return (line or "no validation record") + minutes


# history key -> (name, unit, digits, higher is better); valid_pesq is logged only when monitored
MONITORED = {
    "valid_pesq": ("PESQ-WB", "", 3, True),
    "valid_sisnr": ("SI-SNR", " dB", 2, True),
    "valid_eer": ("EER", " %", 2, False),
}


def curve_line(hist: list[dict], change: bool = False) -> str | None:
    """``best validation <score> at epoch k of n`` (the score the checkpoint was chosen by), and with
    ``change`` what the last fifth of the epochs changed it by."""
    key = next((k for k in MONITORED if hist and k in hist[0]), None)
    vals = [h[key] for h in hist if key in h] if key else []
    if not vals:
        return None
    name, unit, digits, higher = MONITORED[key]
    best = int(np.nanargmax(vals) if higher else np.nanargmin(vals))
    line = f"best validation {name} {vals[best]:.{digits}f}{unit} at epoch {best + 1} of {len(vals)}"
    if change and len(vals) > 1:
        tail = max(1, len(vals) // 5)
        line += f"; its last {tail} epochs changed it by {vals[-1] - vals[-1 - tail]:+.{digits}f}{unit}"
    return line
