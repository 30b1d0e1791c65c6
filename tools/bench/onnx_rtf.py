#!/usr/bin/env python3
"""Real-time factor of ONNX models in onnxruntime, side by side in one run (e.g. float vs int8).

Usage: tools/bench/onnx_rtf.py float=student.onnx int8=student_int8.onnx [--seconds 10] [--repeats 7] [--threads 1]

Each model enhances the same ``--seconds`` of noise-like input (``[1, channels, T]``, its
channel count from sekd's metadata), on ``--threads`` intra-op threads; the repetitions of the
models are interleaved so that the machine's drift touches all alike. Prints the median RTF
(processing time / audio duration), each model's ratio to the first, and the file sizes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="name=path.onnx (or a path)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import onnxruntime as ort

    sessions = {}
    for item in args.models:
        name, _, path = item.rpartition("=")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        meta = json.loads(session.get_modelmeta().custom_metadata_map.get("sekd", "{}"))
        sessions[name or Path(path).stem] = (session, meta, Path(path).stat().st_size)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for rep in range(args.repeats + 1):  # the first round warms up
        for name, (session, meta, _) in sessions.items():
            rate, channels = int(meta.get("sample_rate") or 16000), int(meta.get("channels") or 1)
            x = 0.1 * np.random.default_rng(0).standard_normal((1, channels, int(args.seconds * rate)), np.float32)
            start = time.perf_counter()
            session.run(None, {session.get_inputs()[0].name: x})
            if rep:
                times[name].append((time.perf_counter() - start) / args.seconds)
    first = statistics.median(next(iter(times.values())))
    print(
        f"{args.seconds:g} s input, {args.threads} thread(s), onnxruntime {ort.__version__}, median of {args.repeats}"
    )
    print("| model | RTF | ratio to the first | file (MB) |")
    print("|---|---|---|---|")
    for name, runs in times.items():
        rtf = statistics.median(runs)
        print(f"| {name} | {rtf:.4f} | {rtf / first:.2f} | {sessions[name][2] / 1e6:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
