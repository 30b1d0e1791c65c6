"""Score enhanced (or noisy) speech against clean references, per utterance.

Usage:
    python -m sekd.bin.score --ref_scp data/test/spk1.scp --est_scp exp/teacher/enhanced/test/wav.scp \\
        --out_dir exp/teacher/scoring/test [--metrics pesq_wb,stoi,estoi,sisdr] [--nj 2]

Writes ``<out_dir>/<metric>.scp`` (``<utt> <value>``), ``result.json`` and ``result.md``
(mean over utterances). A metric that fails on one utterance, or is undefined there (a
silent reference; for SI-SDR, SDR and (e)STOI also a silent estimate), records NaN there,
the summary counts the failures and the mean is over the rest; ``result.json`` is strict
JSON (no NaN or Infinity). Multi-channel estimates are scored on ``--ref_channel``.

Every reference utterance needs an estimate: a ``--est_scp`` that covers only some of them
is refused (naming how many are missing and the first), unless ``--allow_missing``, which
scores the subset and records ``num_missing`` in ``result.json``. Bad input stops the run
with an error naming the utterance (``--nj`` > 1 too): unreadable audio, a sample-rate or
length mismatch, NaN or Inf samples in an estimate or reference (refused rather than scored
as NaN: such a file is broken, not a bad enhancement).

The output dir appears only when scoring is complete (written beside it, then renamed). An
existing ``--out_dir`` is replaced only when it holds nothing but a scorer's output files;
anything else is refused, as is a second run into the same dir while one is running
(``sekd.output_dir``).

Metrics (``--metrics``): the intrusive ones of ``sekd.metrics.METRICS`` (pesq_wb, pesq_nb,
stoi, estoi, sisdr, sdr, segsnr); the composite group csig, cbak, covl, llr, wss; DNSMOS
dnsmos_sig, dnsmos_bak, dnsmos_ovrl, dnsmos_p808 (non-intrusive, ``sekd[dnsmos]``); the
L3DAS23 task-1 metric l3das23 and its wer (with ``--asr_model``). A metric that cannot run
here (extra not installed, no ASR model) is reported as unavailable with the reason, not
as a number.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import numpy as np

from sekd.data import DataError, read_scp
from sekd.data.audio import check_finite
from sekd.data.kaldi_dir import PIPE_NOTE, Entry, read_entry
from sekd.metrics import DISPLAY, METRICS, TABLE
from sekd.output_dir import OutputDir


# Metrics computed together, by one call per utterance: group -> (members of sekd.metrics.TABLE, function).
def _composite(ref: np.ndarray, est: np.ndarray, rate: int, done: dict[str, float], opts: Options) -> dict[str, float]:
    from sekd.metrics.composite import composite

    pesq = done.get("pesq_wb") if rate == 16000 else None  # reuse the utterance's PESQ-WB
    return composite(ref, est, rate, None if pesq is None or math.isnan(pesq) else pesq)


def _dnsmos(ref: np.ndarray, est: np.ndarray, rate: int, done: dict[str, float], opts: Options) -> dict[str, float]:
    from sekd.metrics import dnsmos

    return dnsmos.shared()(est, rate)  # non-intrusive: the estimate alone


def _asr(ref: np.ndarray, est: np.ndarray, rate: int, done: dict[str, float], opts: Options) -> dict[str, float]:
    from sekd.metrics import l3das23

    return l3das23.task1_metric(ref, est, rate, l3das23.shared_transcriber(opts.asr_model))


def _members(group: str) -> tuple[str, ...]:
    return tuple(n for n, m in TABLE.items() if m.group == group)


GROUPS: dict[str, tuple[tuple[str, ...], Callable]] = {
    "composite": (_members("composite"), _composite),
    "dnsmos": (_members("dnsmos"), _dnsmos),
    "asr": (_members("asr"), _asr),
}
KNOWN = list(METRICS) + [m for members, _ in GROUPS.values() for m in members]  # every audio metric of TABLE
OUTPUT_FILES = ("result.json", "result.md", *(f"{m}.scp" for m in KNOWN))  # what a scoring dir holds


@dataclass(frozen=True)
class Options:
    metrics: tuple[str, ...]
    channel: int = 0
    asr_model: str | None = None


def _load(entry: Entry, key: str, channel: int) -> tuple[np.ndarray, int]:
    data, rate = read_entry(entry, key)
    check_finite(data, entry.where, f"utterance {key!r} ({entry.value}): ")
    return data[min(channel, data.shape[0] - 1)].astype(np.float64), rate


def score_one(job: tuple[str, Entry, Entry, Options]) -> tuple[str, dict[str, float], dict[str, str]]:
    """Score one utterance; returns its values and the error text of any failed metric."""
    key, ref_e, est_e, opts = job
    ref, ref_rate = _load(ref_e, key, 0)
    est, est_rate = _load(est_e, key, opts.channel)
    if ref_rate != est_rate:
        raise DataError(est_e.where, f"utterance {key!r}: sample rate {est_rate} Hz, reference has {ref_rate} Hz")
    if len(ref) != len(est):
        raise DataError(est_e.where, f"utterance {key!r}: {len(est)} samples, reference {ref_e.value} has {len(ref)}")
    values, errors = {}, {}
    for name in [m for m in opts.metrics if m in METRICS]:
        try:
            values[name] = METRICS[name](ref, est, ref_rate)
        except Exception as exc:  # a metric failing on one utterance must not stop the run
            values[name], errors[name] = math.nan, f"{type(exc).__name__}: {exc}"
    for members, compute in GROUPS.values():
        wanted = [m for m in members if m in opts.metrics]
        if not wanted:
            continue
        try:
            result = compute(ref, est, ref_rate, values, opts)
            values.update({m: float(result[m]) for m in wanted})
        except Exception as exc:
            for m in wanted:
                values[m], errors[m] = math.nan, f"{type(exc).__name__}: {exc}"
    for name, value in values.items():  # -inf dB of a silent estimate and the like: failures, not scores
        if not math.isfinite(value) and name not in errors:
            values[name], errors[name] = math.nan, f"undefined here (computed {value})"
    return key, values, errors


def unavailable(metrics: list[str], asr_model: str | None) -> dict[str, str]:
    """Requested metrics that cannot be computed here, with the reason (reported, not scored)."""
    out = {}
    if any(m in GROUPS["dnsmos"][0] for m in metrics):
        from sekd.metrics import dnsmos

        reason = dnsmos.available()
        if reason:
            out.update({m: reason for m in GROUPS["dnsmos"][0] if m in metrics})
    if asr_model is None:
        out.update(
            {
                m: "no ASR model given (--asr_model; L3DAS23 used facebook/wav2vec2-base-960h)"
                for m in GROUPS["asr"][0]
                if m in metrics
            }
        )
    return out


def _one_thread() -> None:
    """Each scoring process computes on one thread: --nj processes, not BLAS threads, use the
    cores (BLAS threads in every worker oversubscribe the CPU and undo the speed-up)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if "torch" in sys.modules:  # the scorer itself does not need torch; a metric may load it
        sys.modules["torch"].set_num_threads(1)


def _preload() -> None:
    import importlib

    for module in ("pesq", "pystoi.stoi", "scipy.signal", "scipy.linalg", "sekd.metrics.composite"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def summarize(per_utt: dict[str, dict[str, float]], metrics: list[str]) -> dict:
    out = {"num_utts": len(per_utt), "metrics": {}}
    for name in metrics:
        vals = np.array([per_utt[k][name] for k in sorted(per_utt)], dtype=np.float64)
        ok = vals[np.isfinite(vals)]
        out["metrics"][name] = {
            "mean": float(ok.mean()) if ok.size else None,
            "std": float(ok.std()) if ok.size else None,
            "n": int(ok.size),
            "failed": int(vals.size - ok.size),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PIPE_NOTE
    )
    parser.add_argument("--ref_scp", required=True, help="clean references (spk1.scp)")
    parser.add_argument("--est_scp", required=True, help="signals to score (enhanced wav.scp, or noisy wav.scp)")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument(
        "--metrics", default="pesq_wb,stoi,estoi,sisdr", help=f"comma-separated, from: {', '.join(KNOWN)}"
    )
    parser.add_argument("--ref_channel", type=int, default=0)
    parser.add_argument("--nj", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--allow_missing",
        action="store_true",
        help="score the utterances --est_scp has when it lacks some references (default: refuse)",
    )
    parser.add_argument(
        "--asr_model",
        default=None,
        help="wav2vec 2.0 CTC checkpoint dir for wer/l3das23 (else they are reported unavailable)",
    )
    args = parser.parse_args(argv)
    requested = [m for m in args.metrics.split(",") if m]
    unknown = [m for m in requested if m not in KNOWN]
    if unknown:
        parser.error(f"unknown metric {unknown[0]!r}; known: {', '.join(KNOWN)}")
    if args.asr_model is not None and not Path(args.asr_model).is_dir():
        parser.error(f"--asr_model {args.asr_model}: no such directory")
    skipped = unavailable(requested, args.asr_model)
    for name, reason in skipped.items():
        print(f"note: {name} unavailable: {reason}", file=sys.stderr)
    metrics = [m for m in requested if m not in skipped]
    opts = Options(tuple(metrics), args.ref_channel, args.asr_model)
    out_dir = Path(args.out_dir)
    try:
        with OutputDir(out_dir, "sekd-score", OUTPUT_FILES) as staging:
            per_utt, num_missing = score_all(args, opts)
            summary = summarize(per_utt, metrics)
            summary["num_missing"] = num_missing
            # Unavailable metrics stay in the summary, as text, in the order asked.
            summary["metrics"] = {
                name: summary["metrics"].get(name)
                or {"mean": None, "std": None, "n": 0, "failed": 0, "unavailable": skipped[name]}
                for name in requested
            }
            write_outputs(staging.tmp, per_utt, metrics, summary)
            staging.commit()
    except (DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        " ".join(
            f"{DISPLAY.get(n, n)}={s['mean']:.3f}"
            if s["mean"] is not None
            else f"{n}=" + ("unavailable" if s.get("unavailable") else "n/a")
            for n, s in summary["metrics"].items()
        )
        + f" ({summary['num_utts']} utts) -> {out_dir}"
    )
    return 0


def score_all(args: argparse.Namespace, opts: Options) -> tuple[dict[str, dict[str, float]], int]:
    """Per-utterance values of every estimate (warnings for failed metrics), and how many
    references have no estimate (an error unless ``--allow_missing``)."""
    refs, ests = read_scp(args.ref_scp), read_scp(args.est_scp)
    extra = sorted(set(ests) - set(refs))
    if extra:
        raise DataError(ests[extra[0]].where, f"utterance {extra[0]!r} has no reference in {args.ref_scp}")
    missing = sorted(set(refs) - set(ests))
    if missing and not args.allow_missing:
        raise DataError(
            args.est_scp,
            f"no estimate for {len(missing)} of {len(refs)} reference utterances, the "
            f"first {missing[0]!r} ({refs[missing[0]].where}); pass --allow_missing to score the rest",
        )
    jobs = [(k, refs[k], ests[k], opts) for k in sorted(ests)]
    _preload()  # once, before the workers fork, instead of once in each of them
    if args.nj > 1:
        with get_context("fork").Pool(args.nj, initializer=_one_thread) as pool:
            results = pool.map(score_one, jobs, chunksize=max(1, len(jobs) // (args.nj * 32)))  # small: balanced ends
    else:
        _one_thread()
        results = [score_one(j) for j in jobs]
    for key, _, errors in results:
        for name, err in errors.items():
            print(f"warning: {name} failed on {key}: {err}", file=sys.stderr)
    return {k: v for k, v, _ in results}, len(missing)


def write_outputs(out: Path, per_utt: dict[str, dict[str, float]], metrics: list[str], summary: dict) -> None:
    for name in metrics:
        with open(out / f"{name}.scp", "w") as f:
            for key in sorted(per_utt):
                f.write(f"{key} {per_utt[key][name]:.6f}\n")
    (out / "result.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    rows = ["| metric | mean | std | utts | failed |", "|---|---|---|---|---|"]
    for name, s in summary["metrics"].items():
        mean = s.get("unavailable") and "unavailable" or ("n/a" if s["mean"] is None else f"{s['mean']:.4f}")
        std = "n/a" if s["std"] is None else f"{s['std']:.4f}"
        rows.append(f"| {DISPLAY.get(name, name)} | {mean} | {std} | {s['n']} | {s['failed']} |")
    (out / "result.md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    sys.exit(main())
