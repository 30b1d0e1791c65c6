"""What a model costs: parameters, MACs per second of audio, CPU real-time factor, memory, latency.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and
convolutions at the ATen level, so attention written with matmuls is included) plus a
hand count for the layers it can miss: ``nn.LSTM`` runs as one fused kernel on CPU that
the counter sees as zero, ``nn.GRU`` may or may not decompose, and
``nn.MultiheadAttention`` has a fused inference path. For those modules the counter's
own count is replaced by the formula:

- LSTM: ``4 H (I + H)`` MACs per step, layer and direction (plus ``H P`` with a projection);
- GRU: ``3 H (I + H)``;
- MultiheadAttention (query length ``L``, key length ``S``, width ``E``): Q and output
  projections ``2 L E^2``, K/V projections ``S E (k_dim + v_dim)``, and the two attention
  matmuls ``2 L S E``.

Element-wise operations (activations, masks, norms) are not counted, as is usual.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
from torch import nn

RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)


def _rnn_macs(module: nn.Module, inputs: tuple) -> int:
    x = inputs[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        steps_times_batch = int(x.data.shape[0])
    else:
        if x.dim() == 2:  # unbatched [T, I]
            steps_times_batch = int(x.shape[0])
        else:
            steps_times_batch = int(x.shape[0] * x.shape[1])
    gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[type(module)]
    dirs = 2 if module.bidirectional else 1
    hidden = module.hidden_size
    out = getattr(module, "proj_size", 0) or hidden
    macs = 0
    for layer in range(module.num_layers):
        in_size = module.input_size if layer == 0 else out * dirs
        per_step = gates * hidden * (in_size + out) + (hidden * out if out != hidden else 0)
        macs += per_step * dirs
    return macs * steps_times_batch


def _mha_macs(module: nn.MultiheadAttention, inputs: tuple) -> int:
    q, k = inputs[0], inputs[1]
    bf = module.batch_first
    if q.dim() == 2:
        lq, lk, batch = q.shape[0], k.shape[0], 1
    else:
        lq, lk = (q.shape[1], k.shape[1]) if bf else (q.shape[0], k.shape[0])
        batch = q.shape[0] if bf else q.shape[1]
    e = module.embed_dim
    proj = 2 * lq * e * e + lk * e * (module.kdim + module.vdim)
    attn = 2 * lq * lk * e
    return int(batch * (proj + attn))


def count_macs(model: nn.Module, inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``model(inputs)``."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    # the CPU kernel of F.scaled_dot_product_attention (DPDCRN, Uformer) has no formula in
    # torch's table: the two matmuls of attention, as the table counts the GPU kernels
    def sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    cpu_sdpa = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    counter = FlopCounterMode(display=False, custom_mapping={cpu_sdpa: sdpa})
    extra = {"macs": 0, "counted_flops": 0}
    stack: list[int] = []
    handles = []

    def pre(_module, _inputs):
        stack.append(counter.get_total_flops())

    def post_rnn(module, inputs, _output):
        extra["counted_flops"] += counter.get_total_flops() - stack.pop()
        extra["macs"] += _rnn_macs(module, inputs)

    def post_mha(module, inputs, _output):
        extra["counted_flops"] += counter.get_total_flops() - stack.pop()
        extra["macs"] += _mha_macs(module, inputs)

    for module in model.modules():
        if isinstance(module, RECURRENT):
            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post_rnn)]
        elif isinstance(module, nn.MultiheadAttention):
            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post_mha)]
    try:
        with torch.no_grad(), counter:
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return int((counter.get_total_flops() - extra["counted_flops"]) // 2 + extra["macs"])


def example_input(model: nn.Module, seconds: float, batch: int = 1) -> torch.Tensor:
    rate = int(getattr(model, "sample_rate", 16000))
    channels = int(getattr(model, "in_channels", 1))
    gen = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(batch, channels, int(seconds * rate), generator=gen)


def macs_per_second(model: nn.Module, seconds: float = 4.0) -> float:
    """MACs per second of input audio, from a ``seconds``-long input (amortises edge frames)."""
    model.eval()
    return count_macs(model, example_input(model, seconds)) / seconds


def real_time_factor(model: nn.Module, seconds: float = 4.0, threads: int = 1, repeats: int = 3) -> float:
    """Median wall time of ``model(x)`` over audio duration, with ``threads`` intra-op threads."""
    model.eval()
    x = example_input(model, seconds)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            model(x)  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(old)
    return statistics.median(times) / seconds


def sgemm_gflops(threads: int = 1, size: int = 1024, repeats: int = 9) -> float:
    """The machine's dense float32 matmul rate (``size``-cubed ``torch.mm``, median of ``repeats``), GFLOP/s.

    It is the compute limit a model's real-time factor is compared with: a model that does
    ``M`` MACs per second of audio cannot run faster than ``2 M / rate`` (its MAC-bound RTF).
    """
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=gen), torch.randn(size, size, generator=gen)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.mm(a, b)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(old)
    return 2 * size**3 / statistics.median(times) / 1e9


def train_step_seconds(
    model: nn.Module, seconds: float = 2.0, batch: int = 4, threads: int = 1, repeats: int = 3
) -> float:
    """Median wall time of one training step: forward on ``batch`` x ``seconds`` of audio, an
    L1 loss, backward and an Adam step (``threads`` intra-op threads). The model's weights change."""
    model.train()
    x = example_input(model, seconds, batch)
    target = x.mean(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    times = []
    try:
        for i in range(repeats + 1):  # the first is a warm-up
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            out = model(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            n = min(out.shape[-1], target.shape[-1])
            (out.reshape(batch, -1, out.shape[-1])[:, 0, :n] - target[:, :n]).abs().mean().backward()
            opt.step()
            if i:
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(old)
    return statistics.median(times)


_PEAK_SCRIPT = """
import json, os, sys, threading, time, torch
from sekd.models import build_model
from sekd.models.profile import example_input
spec = json.loads(sys.argv[1])
torch.set_num_threads(1)
model = build_model(spec["name"], **spec["args"]).eval()
x = example_input(model, spec["seconds"])
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
base, peak, done = rss(), [0], threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.0005)
t = threading.Thread(target=watch)
t.start()
with torch.no_grad():
    model(x)
done.set()
t.join()
print(json.dumps({"peak_bytes": max(peak[0], rss()) - base}))
"""


def peak_memory_mib(name: str, args: dict, seconds: float = 4.0) -> float:
    """Peak resident memory added by one forward pass, in MiB.

    Measured in a fresh process (1 thread) by sampling ``/proc/self/statm`` every 0.5 ms
    during the forward pass, relative to the resident size just before it (Linux only).
    """
    spec = json.dumps({"name": name, "args": args, "seconds": seconds})
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, spec], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"] / 2**20


def profile_model(
    name: str,
    args: dict,
    seconds: float = 4.0,
    threads: int | None = None,
    memory: bool = True,
    sgemm: float | None = None,
    train_step: tuple[float, int] | None = None,
    repeats: int = 3,
) -> dict[str, Any]:
    """Every figure of the profile for one model config at one input length.

    ``sgemm`` (GFLOP/s on one thread, see :func:`sgemm_gflops`) adds the MAC-bound RTF
    ``2 MACs/s / sgemm`` and the ratio of the one-thread RTF to it; ``train_step = (seconds,
    batch)`` adds the time of one training step on one thread."""
    from sekd.models import build_model, count_parameters

    model = build_model(name, **args).eval()
    rate = int(getattr(model, "sample_rate", 16000))
    latency = getattr(model, "algorithmic_latency", -1)
    threads = threads or os.cpu_count() or 1
    row = {
        "model": name,
        "seconds": seconds,
        "params": count_parameters(model),
        "macs_per_s": macs_per_second(model, seconds),
        "rtf_1thread": real_time_factor(model, seconds, 1, repeats),
        "rtf_all_threads": real_time_factor(model, seconds, threads, repeats),
        "threads": threads,
        "peak_mem_mib": peak_memory_mib(name, args, seconds) if memory else None,
        "causal": bool(getattr(model, "causal", False)),
        "latency_ms": 1000.0 * latency / rate if latency is not None and latency >= 0 else None,
        "mac_bound_rtf": None,
        "limit_ratio": None,
        "train_step_s": None,
    }
    if sgemm:
        row["mac_bound_rtf"] = 2 * row["macs_per_s"] / (sgemm * 1e9)
        row["limit_ratio"] = row["rtf_1thread"] / row["mac_bound_rtf"]
    if train_step:
        row["train_step_s"] = train_step_seconds(model, train_step[0], train_step[1], 1, repeats)
    return row
