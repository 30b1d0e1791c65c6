#!/usr/bin/env python3
"""The peer race: sekd's DCCRN-CL against Asteroid's DCCRNet (0.7.0), same input, same threads.

Asteroid is not a dependency of sekd; install it aside and point ``--asteroid`` at it:

    tools/venv/bin/pip install --no-deps --target /tmp/asteroid asteroid==0.7.0 asteroid-filterbanks==0.4.0 \\
        requests charset-normalizer urllib3 certifi
    tools/bench/peer_race.py --asteroid /tmp/asteroid [--threads 2] [--batch 4] [--seconds 2] [--repeats 7]

Both models are DCCRN-CL (Hu et al. 2020: complex LSTM, 400/100 STFT, FFT 512). Timed,
alternating between the two so drift touches both alike (median of ``--repeats``): a training
step (forward on ``batch`` x ``seconds`` of audio, an L1 loss on the waveform, backward, Adam
step) and an inference forward (no autograd). Prints each time and sekd's throughput ratio
(Asteroid's time / sekd's). Asteroid 0.7.0 passes numpy integers as LSTM sizes, which current
torch refuses; the race casts them to int (a shim in this script, not a change to Asteroid).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def _int_sized_rnns() -> None:
    """Let Asteroid 0.7.0 build its LSTMs on current torch (numpy int sizes -> int)."""
    base = torch.nn.modules.rnn.RNNBase.__init__

    def init(self, mode, input_size, hidden_size, *args, **kwargs):
        base(self, mode, int(input_size), int(hidden_size), *args, **kwargs)

    torch.nn.modules.rnn.RNNBase.__init__ = init


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asteroid", required=True, help="a directory with asteroid 0.7.0 installed (pip --target)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, args.asteroid)
    _int_sized_rnns()
    from asteroid.models import DCCRNet

    from sekd.models import PRESETS, build_model

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    name, margs = PRESETS["dccrn_cl"]
    models = {"sekd": build_model(name, **margs), "asteroid": DCCRNet("DCCRN-CL")}
    gen = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(args.batch, int(args.seconds * 16000), generator=gen)
    target = 0.1 * torch.randn(args.batch, int(args.seconds * 16000), generator=gen)
    optims = {k: torch.optim.Adam(m.parameters(), lr=1e-6) for k, m in models.items()}

    def out(key: str, model: torch.nn.Module) -> torch.Tensor:
        y = model(x)
        return (y[:, 0] if y.dim() == 3 else y)[..., : x.shape[-1]]

    def train(key: str) -> None:
        model, opt = models[key], optims[key]
        model.train()
        opt.zero_grad(set_to_none=True)
        (out(key, model) - target[..., : x.shape[-1]]).abs().mean().backward()
        opt.step()

    def infer(key: str) -> None:
        models[key].eval()
        with torch.no_grad():
            out(key, models[key])

    times = {(k, kind): [] for k in models for kind in ("train", "infer")}
    for rep in range(args.repeats + 1):  # the first round warms up
        for kind, fn in (("train", train), ("infer", infer)):
            for key in models:
                start = time.perf_counter()
                fn(key)
                if rep:
                    times[(key, kind)].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    print(f"DCCRN-CL, batch {args.batch} x {args.seconds:g} s, {args.threads} thread(s), median of {args.repeats}")
    print(f"parameters: sekd {params['sekd']:,}, asteroid {params['asteroid']:,}")
    print("| step | sekd (s) | asteroid (s) | sekd throughput ratio |")
    print("|---|---|---|---|")
    for kind in ("train", "infer"):
        a, s = med[("asteroid", kind)], med[("sekd", kind)]
        print(f"| {kind} | {s:.3f} | {a:.3f} | {a / s:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
