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
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch

from sekd.infer import Enhancer
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
    import onnx

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
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"sekd": json.dumps(meta)})
    onnx.save(model, str(path))
    return path


def parity(enhancer: Enhancer, exported, seconds: float) -> float:
    """Max abs difference to the PyTorch model on inputs of two other lengths."""
    worst = 0.0
    gen = torch.Generator().manual_seed(1)
    for length in (int(seconds * enhancer.sample_rate) + 1234, int(seconds * enhancer.sample_rate * 0.6) + 77):
        x = 0.1 * torch.randn(1, enhancer.channels, length, generator=gen)
        with torch.no_grad():
            worst = max(worst, (enhancer.model(x) - exported(x)).abs().max().item())
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="checkpoint (.pt) or packed model (.zip)")
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the example input")
    parser.add_argument("--tolerance", type=float, default=1e-4)
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
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    try:
        if args.format == "onnx":
            export_onnx(enhancer, tmp, args.seconds, meta)
            exported = Enhancer.from_path(tmp).model
        else:
            exported = trace(enhancer, args.seconds)
            torch.jit.save(exported, str(tmp), _extra_files={"sekd.json": json.dumps(meta)})
        err = parity(enhancer, exported, args.seconds)
        if not err <= args.tolerance:
            print(
                f"error: the exported model differs from PyTorch by {err:.2e} (> {args.tolerance:g})", file=sys.stderr
            )
            return 1
        tmp.replace(out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        tmp.unlink(missing_ok=True)
    print(f"exported {meta['model_name']} to {out} ({args.format}; max abs difference to PyTorch {err:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
