"""Export a trained model for deployment without sekd's Python code.

Usage:
    sekd-export --checkpoint exp/student_kd_mtakd/checkpoints/best.pt --format onnx --out student.onnx
    sekd-export --checkpoint exp/student_kd_mtakd/checkpoints/best.pt --format torchscript --out student.ts

``onnx``: opset 17, input ``noisy`` ``[batch, channels, time]``, output ``enhanced``
``[batch, time]``, both axes but channels dynamic; sekd's metadata (model name, sample rate,
channels, parameters, git commit) is in the model's ``metadata_props``. DCCRN models are
exported through ``sekd.models.onnx_export.RealDCCRN`` (the same layers, the STFT as
convolutions, the masks in real arithmetic), DPDCRN likewise, MANNER as it is. Uformer
computes on complex tensors that torch's ONNX exporter does not convert: use TorchScript.
Run it with onnxruntime, or ``sekd-enhance --checkpoint student.onnx`` (which does).

``torchscript``: the model traced on ``--seconds`` of input with a dynamic length (the
STFT framing follows the traced sizes), saved with ``torch.jit.save``; its metadata (model
name, sample rate, channels, parameters, git commit) travels inside as ``sekd.json``, and
``sekd-enhance --checkpoint student.ts`` / ``sekd.load_pretrained`` run it. Load it in C++
with ``torch::jit::load`` or in Python with ``torch.jit.load``: input ``[B, C, T]`` float,
output ``[B, T]``. Only the model is exported (KD adapters live in ``last.pt`` and are not
part of it). The export is checked against the PyTorch model on two lengths
(``--tolerance``, max abs difference) before it is written.

Both formats are checked against the PyTorch model on two lengths other than the
example's (``--tolerance``, max abs difference) before they are written.

``--int8`` (ONNX only): dynamic int8 quantization with onnxruntime
(``onnxruntime.quantization.quantize_dynamic``): the weights of the ``--int8_ops`` operators
are stored as int8 (per output channel with ``--per_channel``), their activations quantized
per call at run time; everything else stays float. ``Conv`` is not in the default list: on the
mini DCCRN teacher, onnxruntime's int8 convolution (ConvInteger) ran 1.6x slower than float and
took the output to 22 dB from float (the STFT is a convolution too), against 0.96x and 41.5 dB
for MatMul and LSTM alone (2026-12-02, one thread, ``tools/bench/onnx_rtf.py``). The file is about a quarter of the size
for those layers. An int8 model cannot match float to 1e-4, so the check is the
signal-to-difference ratio of its output against the float PyTorch model's, on the same two
inputs, in dB (``--min_snr``); the metadata says ``"quantization": "int8-dynamic"`` and the
SNR measured. Whether int8 is faster depends on the model and the CPU's int8 kernels: measure
it (``tools/bench/onnx_rtf.py float=a.onnx int8=b.onnx``) before shipping it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from sekd.infer import Enhancer
from sekd.output_dir import atomic_file
from sekd.train.checkpoint import add_trust_option, apply_trust_option


def trace(enhancer: Enhancer, seconds: float) -> torch.jit.ScriptModule:
    example = torch.randn(
        1, enhancer.channels, int(seconds * enhancer.sample_rate), generator=torch.Generator().manual_seed(0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic, checked below instead
        return torch.jit.trace(enhancer.model.eval(), example, check_trace=False)


def onnx_module(enhancer: Enhancer) -> torch.nn.Module:
    """The module to hand to the ONNX exporter (real arithmetic only)."""
    from sekd.models.onnx_export import real_arithmetic

    return real_arithmetic(enhancer.model)


def export_onnx(enhancer: Enhancer, path: Path, seconds: float, meta: dict) -> Path:
    module = onnx_module(enhancer)
    example = torch.randn(
        1, enhancer.channels, int(seconds * enhancer.sample_rate), generator=torch.Generator().manual_seed(0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["noisy"],
            output_names=["enhanced"],
            dynamic_axes={"noisy": {0: "batch", 2: "time"}, "enhanced": {0: "batch", 1: "time"}},
            opset_version=17,
            dynamo=False,
            training=torch.onnx.TrainingMode.EVAL,
        )
    module.eval()  # the exporter restores the module's former mode
    enhancer.model.eval()
    set_metadata(path, meta)
    return path


INT8_OPS = ("MatMul", "Conv", "LSTM", "Gather", "Attention")


def set_metadata(path: Path, meta: dict) -> None:
    """Write sekd's metadata into the ONNX model's ``metadata_props`` (key ``sekd``, JSON)."""
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"sekd": json.dumps(meta)})
    onnx.save(model, str(path))


def quantize_int8(src: Path, dst: Path, ops: list[str], per_channel: bool) -> Path:
    """Dynamic int8 quantization of the ONNX model at ``src`` into ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    unknown = sorted(set(ops) - set(INT8_OPS))
    if unknown:
        raise ValueError(f"--int8_ops: cannot quantize {', '.join(unknown)}; choose from {', '.join(INT8_OPS)}")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime's advice to pre-process (shape inference) is not needed here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                src, dst, op_types_to_quantize=list(ops), per_channel=per_channel, weight_type=QuantType.QInt8
            )
    finally:
        root.setLevel(level)
    return dst


def _test_inputs(enhancer: Enhancer, seconds: float):
    gen = torch.Generator().manual_seed(1)
    for length in (int(seconds * enhancer.sample_rate) + 1234, int(seconds * enhancer.sample_rate * 0.6) + 77):
        yield 0.1 * torch.randn(1, enhancer.channels, length, generator=gen)


def parity(enhancer: Enhancer, exported, seconds: float) -> float:
    """Max abs difference to the PyTorch model on inputs of two other lengths."""
    worst = 0.0
    for x in _test_inputs(enhancer, seconds):
        with torch.no_grad():
            worst = max(worst, (enhancer.model(x) - exported(x)).abs().max().item())
    return worst


def parity_snr(enhancer: Enhancer, exported, seconds: float) -> float:
    """Worst ratio (dB) of the PyTorch output's energy to that of the exported output's difference
    from it, on the same inputs as :func:`parity`."""
    worst = float("inf")
    for x in _test_inputs(enhancer, seconds):
        with torch.no_grad():
            ref = enhancer.model(x)
            err = (ref - exported(x)).square().sum().item()
        worst = min(worst, 10 * math.log10((ref.square().sum().item() + 1e-30) / (err + 1e-30)))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="checkpoint (.pt) or packed model (.zip)")
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the example input")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--int8", action="store_true", help="ONNX only: dynamic int8 quantization (onnxruntime)")
    parser.add_argument(
        "--int8_ops",
        default="MatMul,LSTM,Gather,Attention",
        help=f"operators whose weights become int8 (comma-separated; of {','.join(INT8_OPS)})",
    )
    parser.add_argument("--per_channel", action="store_true", help="int8 scales per output channel")
    parser.add_argument("--min_snr", type=float, default=20.0, help="--int8: least output SNR (dB) against float")
    add_trust_option(parser)
    args = parser.parse_args(argv)
    apply_trust_option(args)
    try:
        enhancer = Enhancer.from_path(args.checkpoint)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    meta = {k: enhancer.info.get(k) for k in ("model_name", "num_params", "git_commit", "seed", "role")}
    meta.update(
        sample_rate=enhancer.sample_rate,
        channels=enhancer.channels,
        format=args.format,
        win_len=getattr(getattr(enhancer.model, "stft", None), "win_len", None),
    )
    if args.int8 and args.format != "onnx":
        parser.error("--int8 needs --format onnx")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        # the export is written beside out and renamed onto it only when it passed its check
        with atomic_file(out) as tmp, tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as scratch:
            if args.format == "onnx" and args.int8:
                ops = [op.strip() for op in args.int8_ops.split(",") if op.strip()]
                float_path = Path(scratch) / "float.onnx"
                export_onnx(enhancer, float_path, args.seconds, meta)
                meta.update(quantization="int8-dynamic", int8_ops=ops, per_channel=args.per_channel)
                quantize_int8(float_path, tmp, ops, args.per_channel)
                snr = parity_snr(enhancer, Enhancer.from_path(tmp).model, args.seconds)
                if not snr >= args.min_snr:
                    raise ValueError(
                        f"the int8 model's output is {snr:.1f} dB from float (< --min_snr {args.min_snr:g})"
                    )
                meta["snr_db_vs_float"] = round(snr, 2)
                set_metadata(tmp, meta)
                done = f"onnx int8 ({','.join(ops)}); output SNR against float {snr:.1f} dB"
            else:
                if args.format == "onnx":
                    export_onnx(enhancer, tmp, args.seconds, meta)
                    exported = Enhancer.from_path(tmp).model
                else:
                    exported = trace(enhancer, args.seconds)
                    torch.jit.save(exported, str(tmp), _extra_files={"sekd.json": json.dumps(meta)})
                err = parity(enhancer, exported, args.seconds)
                if not err <= args.tolerance:
                    raise ValueError(f"the exported model differs from PyTorch by {err:.2e} (> {args.tolerance:g})")
                done = f"{args.format}; max abs difference to PyTorch {err:.1e}"
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported {meta['model_name']} to {out} ({done})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
