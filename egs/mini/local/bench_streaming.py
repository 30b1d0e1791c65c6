#!/usr/bin/env python3
"""Benchmark: real-time factor of a causal student (DCCRN or DPDCRN) offline (PyTorch),
streaming (frame by frame), as TorchScript and as ONNX (onnxruntime), on one CPU thread,
side by side in one run (read the ratios).

Usage: local/bench_streaming.py [--checkpoint exp/student/checkpoints/best.pt | --config conf/student.yaml]
                                [--seconds 10] [--repeats 3] [--frames 1 4 8]
RTF = processing time / audio duration (median of the repeats). Streaming processes
``--frames`` hops per call (one hop: DCCRN 100 samples = 6.25 ms at 16 kHz; DPDCRN 256 =
16 ms), as a live stream would; each extra frame per call adds a hop of latency and shares
the per-call overhead. DPDCRN's causal time attention keeps every past frame (a KV cache), so its
streaming cost per frame grows with the length: compare --seconds 10 and 60.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--config", default="conf/student.yaml")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--frames", type=int, nargs="+", default=[1, 4, 8], help="STFT frames per streaming step (one row each)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    from sekd.models import build_model
    from sekd.models.streaming import streamer

    if args.checkpoint:
        from sekd.train.checkpoint import load_model

        model = load_model(args.checkpoint)[0]
        source = args.checkpoint
    else:
        from sekd.train.config import build_config

        cfg = build_config([args.config])
        model = build_model(cfg["model"]["name"], **cfg["model"]["args"]).eval()
        source = args.config
    channels = int(getattr(model, "in_channels", 1))
    x = 0.1 * torch.randn(1, channels, int(args.seconds * 16000), generator=torch.Generator().manual_seed(0))
    streams = {k: streamer(model, k) for k in args.frames}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x[..., :32000], check_trace=False)

    def timed(fn) -> float:
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad():
                fn()
            runs.append((time.perf_counter() - start) / args.seconds)
        return statistics.median(runs)

    import tempfile

    import onnxruntime as ort

    from sekd.models.onnx_export import real_arithmetic

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            real_arithmetic(model),
            (x[..., :32000],),
            f"{tmp}/m.onnx",
            input_names=["noisy"],
            output_names=["enhanced"],
            dynamic_axes={"noisy": {0: "b", 2: "t"}, "enhanced": {0: "b", 1: "t"}},
            opset_version=17,
            dynamo=False,
        )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        session = ort.InferenceSession(f"{tmp}/m.onnx", opts, providers=["CPUExecutionProvider"])
    model.eval()
    onnx_rtf = timed(lambda: session.run(None, {"noisy": x.numpy()}))
    offline = timed(lambda: model(x))
    script = timed(lambda: traced(x))
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {source} ({params:,} parameters), {args.seconds:g} s of audio, 1 thread, median of {args.repeats}")
    print(f"offline     RTF {offline:.4f}")
    for k, stream in streams.items():
        streaming = timed(lambda: stream.process(x))
        with torch.no_grad():
            diff = (stream.process(x) - model(x)).abs().max().item()
        block_ms = 1000 * stream.block / 16000
        print(
            f"streaming   RTF {streaming:.4f}  ({streaming / offline:.2f}x offline; {k} frame(s) = "
            f"{stream.block} samples per call, {block_ms * streaming:.3f} ms per {block_ms:g} ms call; "
            f"latency {stream.algorithmic_latency / 16:.1f} ms; max |streaming - offline| {diff:.1e})"
        )
    print(f"torchscript RTF {script:.4f}  ({script / offline:.2f}x offline)")
    onnx_diff = abs(session.run(None, {"noisy": x.numpy()})[0] - model(x).detach().numpy()).max()
    print(f"onnx (ORT)  RTF {onnx_rtf:.4f}  ({onnx_rtf / offline:.2f}x offline; max |onnx - pytorch| {onnx_diff:.1e})")


if __name__ == "__main__":
    main()
