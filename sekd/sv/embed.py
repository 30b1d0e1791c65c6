"""Speaker embeddings of a data dir's utterances, and their kaldiio ark/scp files.

:func:`embed_utterances` runs a model (``task = "sv"``: waveform ``[1, T]`` -> embedding
``[1, D]``) on one utterance at a time, in eval mode without gradients: ECAPA-TDNN does not
mask padding, so utterances of different lengths are never batched. ``max_seconds`` keeps
the first seconds of each utterance (validation; the paper-style evaluation embeds whole
utterances, as WeSpeaker and ESPnet's ``spk1`` recipes do).

:func:`write_embeddings` writes ``<out_dir>/embeddings.ark`` and ``embeddings.scp`` (Kaldi
float vectors, ``kaldiio.save_ark``), atomically: both are written under temporary names with
the scp already pointing at the final ark name, the ark is renamed first and the scp last, so
an ``embeddings.scp`` that exists is complete. :func:`read_embeddings` reads an scp back into
``{key: float32 [D]}`` (``kaldiio.load_scp``); :func:`speaker_means` averages them per speaker
(the cohort of AS-norm, as WeSpeaker's recipes build it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np

if TYPE_CHECKING:  # torch only where models run: reading and scoring embeddings stays light
    import torch
    from torch import nn


def embed_utterances(
    model: nn.Module,
    items: Iterable[tuple[str, torch.Tensor]],
    device="cpu",
    max_seconds: float | None = None,
    sample_rate: int = 16000,
) -> dict[str, np.ndarray]:
    """``{key: float32 [D]}`` for ``(key, wav [C, T] or [T])`` items (channel 0 is used)."""
    import torch

    with torch.no_grad():
        return _embed(model, items, device, max_seconds, sample_rate)


def _embed(model, items, device, max_seconds, sample_rate) -> dict[str, np.ndarray]:
    was_training = model.training
    model.eval()
    limit = int(round(max_seconds * sample_rate)) if max_seconds else None
    out: dict[str, np.ndarray] = {}
    try:
        for key, wav in items:
            wav = wav if wav.dim() == 1 else wav[0]
            if limit:
                wav = wav[:limit]
            emb = model(wav[None].to(device).float())
            out[key] = emb[0].float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def write_embeddings(embeddings: Mapping[str, np.ndarray], out_dir: str | Path, name: str = "embeddings") -> Path:
    """Write ``<out_dir>/<name>.{ark,scp}`` (keys sorted); returns the scp path."""
    import kaldiio

    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    ark, scp = out_dir / f"{name}.ark", out_dir / f"{name}.scp"
    tmp_ark, tmp_scp = out_dir / f".{name}.ark.tmp{os.getpid()}", out_dir / f".{name}.scp.tmp{os.getpid()}"
    data = {k: np.asarray(embeddings[k], dtype=np.float32).reshape(-1) for k in sorted(embeddings)}
    kaldiio.save_ark(str(tmp_ark), data, scp=str(tmp_scp))
    lines = tmp_scp.read_text().splitlines()
    fixed = []
    for line in lines:  # the scp names the temporary ark: point it at the final name
        key, where = line.split(" ", 1)
        path, offset = where.rsplit(":", 1)
        if Path(path) != tmp_ark:
            raise RuntimeError(f"{tmp_scp}: unexpected ark path {path}")
        fixed.append(f"{key} {ark}:{offset}\n")
    tmp_scp.write_text("".join(fixed))
    scp.unlink(missing_ok=True)  # while the ark is replaced, no scp claims it is complete
    os.replace(tmp_ark, ark)
    os.replace(tmp_scp, scp)
    return scp


def read_embeddings(scp: str | Path) -> dict[str, np.ndarray]:
    """``{key: float32 [D]}`` of an embeddings scp; a missing or unreadable file is a DataError."""
    import kaldiio

    from sekd.data import DataError

    scp = Path(scp)
    if not scp.is_file():
        raise DataError(str(scp), "embeddings scp not found")
    try:
        return {k: np.asarray(v, dtype=np.float32).reshape(-1) for k, v in kaldiio.load_scp(str(scp)).items()}
    except Exception as exc:  # kaldiio raises many types
        raise DataError(str(scp), f"unreadable embeddings: {exc}") from None


def speaker_means(embeddings: Mapping[str, np.ndarray], utt2spk: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Mean embedding of each speaker (utterances without a speaker are skipped)."""
    groups: dict[str, list[np.ndarray]] = {}
    for key, emb in embeddings.items():
        if key in utt2spk:
            groups.setdefault(utt2spk[key], []).append(np.asarray(emb, dtype=np.float64))
    return {s: np.mean(v, axis=0) for s, v in sorted(groups.items())}
