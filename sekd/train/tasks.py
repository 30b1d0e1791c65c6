"""The tasks a training run can have: what the one loop (``sekd.train.trainer.Trainer``) does not know.

A task supplies the datasets, the modules it trains beside the model (the speaker head), the
loss of a batch, the validation scores and which of them chooses ``best.pt`` (``monitor``,
higher or lower is better: ``mode``), and the task's lines in checkpoints, logs and
``model_info.json``. The model names its task (``task`` class attribute, ``"enh"`` when
absent); ``TASKS.build(name, cfg, train_dir, valid_dir, seed)`` makes it.

- ``enh`` (speech enhancement): random crops of (noisy, clean) pairs (or clean speech mixed with
  noise on the fly: ``data.noise_scp``), the waveform loss of ``cfg['loss']``, validation SI-SNR
  of whole utterances (``valid_sisnr``) and, with ``train.best_metric: pesq``, PESQ (``valid_pesq``,
  then the monitored score).
- ``sv`` (speaker verification, e.g. ``ecapa_tdnn``): random crops of ``wav.scp`` with the speaker's
  index in the training dir's sorted ``utt2spk`` speakers as label; an AAM-softmax head over those
  speakers (``loss: {name: aam, margin: 0.2, scale: 30}``, optional ``margin_warmup_steps``: the
  margin rises linearly from 0 over that many steps), trained with the model and saved in every
  checkpoint under ``head`` (``{name, args, speakers, state_dict}``, so a teacher checkpoint gives
  its head to logit KD); validation EER (%) on the valid dir's ``trials`` (``valid_eer``, lower is
  better).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from sekd.distill import KDContext
from sekd.registry import Registry
from sekd.train import distributed
from sekd.train.config import ConfigError
from sekd.train.losses import build_loss, si_snr

if TYPE_CHECKING:
    from sekd.train.trainer import Trainer

TASKS: Registry[type] = Registry("task")


class Task:
    """What the loop asks of a task (``EnhTask``, ``SvTask``)."""

    name = ""
    monitor = ""  # the key of ``validate``'s scores that chooses best.pt
    mode = "max"  # "max": higher is better; "min": lower
    caches_teacher = False  # its teacher outputs can be cached (kd.cache_teacher)

    def __init__(self, cfg: dict, train_dir: str, valid_dir: str, seed: int) -> None:
        self.cfg = cfg
        self.train_set: Any = None
        self.valid_set: Any = None

    def setup(self, model: nn.Module, device: torch.device) -> None:
        """After the model is built: the loss and any modules trained with it."""

    def modules(self) -> list[nn.Module]:
        """Modules trained beside the model (stepped, clipped and averaged with it)."""
        return []

    def attach_teacher(self, ckpt: dict, where: str, device: torch.device) -> None:
        """A frozen teacher checkpoint was loaded: take what the task needs from it."""

    def probe_batch(self, batch: list[torch.Tensor]) -> list[torch.Tensor]:
        """The batch the KD terms are built on (before the optimizer)."""
        return batch

    def loss(self, tr: Trainer, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def validate(self, tr: Trainer, writer) -> dict[str, float]:
        raise NotImplementedError

    def better(self, score: float, best: float) -> bool:
        """``score`` beats ``best`` (NaN, a diverged model, never does)."""
        return score > best if self.mode == "max" else score < best

    @property
    def worst(self) -> float:
        return -math.inf if self.mode == "max" else math.inf

    def describe(self) -> dict[str, Any]:
        """The task's keys in every checkpoint and model_info.json."""
        return {}

    def state(self) -> dict[str, Any]:
        """The task's part of a checkpoint (the speaker head)."""
        return {}

    def load_state(self, ckpt: dict) -> None:
        pass

    def epoch_record(self, tr: Trainer) -> dict[str, Any]:
        """Extra figures of the epoch for the history."""
        return {}

    def epoch_line(self, record: dict, improved: bool) -> str:
        """The score part of the ``epoch N done: ...`` log line."""
        raise NotImplementedError

    def summary(self, history: list[dict], best: float) -> dict[str, Any]:
        """Extra keys of model_info.json."""
        return {}


@TASKS.register("enh")
class EnhTask(Task):
    name = "enh"
    caches_teacher = True

    def __init__(self, cfg: dict, train_dir: str, valid_dir: str, seed: int) -> None:
        from sekd.data import CropDataset, MixingDataset, UtteranceDataset

        super().__init__(cfg, train_dir, valid_dir, seed)
        dcfg = cfg["data"]
        self.best_metric = str(cfg["train"]["best_metric"])  # sisnr or pesq
        self.monitor = f"valid_{self.best_metric}"
        if dcfg["noise_scp"]:
            noise_scp = Path(train_dir) / dcfg["noise_scp"]  # an absolute path stays as it is
            self.train_set = MixingDataset(
                train_dir,
                str(noise_scp),
                dcfg["segment"],
                dcfg["sample_rate"],
                seed,
                dcfg["snr_range"],
                dcfg["level_range"],
                int(dcfg["crop_slots"]),
            )
        else:
            self.train_set = CropDataset(
                train_dir,
                dcfg["segment"],
                dcfg["sample_rate"],
                seed,
                dcfg["channels"],
                dcfg["ref_channel"],
                int(dcfg["crop_slots"]),
            )
        self.valid_set = UtteranceDataset(valid_dir, dcfg["sample_rate"], dcfg["channels"], dcfg["ref_channel"])

    def setup(self, model: nn.Module, device: torch.device) -> None:
        self.loss_fn = build_loss(**self.cfg["loss"])

    def probe_batch(self, batch: list[torch.Tensor]) -> list[torch.Tensor]:
        return batch[:2]  # no crop ids: the teacher-target cache stays empty

    def loss(self, tr: Trainer, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """``(noisy [B, C, T], clean [B, T][, crop ids [B]])``."""
        noisy, clean = batch[0], batch[1]
        crop_ids = batch[2] if len(batch) > 2 else None
        est, s_feats = tr.student_forward(noisy)
        task = self.loss_fn(est.float(), clean, noisy)
        parts = {"task": task.item()}
        if not tr.kd_terms:
            return task, parts
        t_est, t_feats = None, {}
        if tr.teacher_cache is not None and crop_ids is not None:
            t_est, t_feats = tr.teacher_cache.lookup(
                crop_ids.tolist(), lambda idx: tr.teacher_forward(noisy[idx]), tr.dist.device
            )
        elif tr.teacher is not None:
            t_est, t_feats = tr.teacher_forward(noisy)
        ctx = KDContext(noisy, clean, est, t_est, s_feats, t_feats)
        return tr.with_kd(task, ctx, parts), parts

    @torch.no_grad()
    def validate(self, tr: Trainer, writer) -> dict[str, float]:
        """Mean SI-SNR (dB) of whole validation utterances (``train.max_valid_utts`` of them), and PESQ
        with ``train.best_metric: pesq``; the first ``train.num_audio_examples`` go to TensorBoard."""
        tcfg, rate = tr.cfg["train"], int(self.cfg["data"]["sample_rate"])
        cap, n_audio = tcfg["max_valid_utts"], int(tcfg["num_audio_examples"])
        count = min(len(self.valid_set), cap) if cap else len(self.valid_set)
        pesq_scores: list[float] = []

        def score(i: int, key: str, noisy: torch.Tensor, clean: torch.Tensor, est: torch.Tensor) -> None:
            if writer is not None and tr.dist.main and i < n_audio:
                writer.add_audio(f"valid/{key}/enhanced", est[0].clamp(-1, 1).cpu(), tr.epoch, rate)
                if tr.epoch == 0:
                    writer.add_audio(f"valid/{key}/noisy", noisy[0, 0].clamp(-1, 1).cpu(), 0, rate)
                    writer.add_audio(f"valid/{key}/clean", clean[0].clamp(-1, 1).cpu(), 0, rate)
            if self.best_metric == "pesq":
                pesq_scores.append(valid_pesq(clean, est, rate))

        # each rank its share, summed below
        scores = valid_sisnr(tr.model, self.valid_set, range(tr.dist.rank, count, tr.dist.world), tr.dist.device, score)
        tr.model.train()
        good = [p for p in pesq_scores if math.isfinite(p)]
        total, n, p_total, p_n = distributed.all_sum(
            [float(np.sum(scores)), float(len(scores)), float(np.sum(good)), float(len(good))], tr.dist
        )
        out = {"valid_sisnr": total / max(n, 1)}
        if self.best_metric == "pesq":
            out["valid_pesq"] = p_total / p_n if p_n else math.nan
        return out

    def epoch_line(self, record: dict, improved: bool) -> str:
        pesq = f", PESQ-WB {record['valid_pesq']:.3f}" if "valid_pesq" in record else ""
        return f"valid SI-SNR {record['valid_sisnr']:.3f} dB{pesq}{' (best)' if improved else ''}"

    def summary(self, history: list[dict], best: float) -> dict[str, Any]:
        if self.best_metric == "sisnr":
            return {}
        chosen = next(r for r in history if r.get(self.monitor) == best)  # the SI-SNR of the epoch PESQ chose
        return {
            "best_metric": self.best_metric,
            "best_valid_sisnr": chosen["valid_sisnr"],
            "best_epoch": chosen["epoch"],
        }


@TASKS.register("sv")
class SvTask(Task):
    name = "sv"
    monitor = "valid_eer"
    mode = "min"

    def better(self, score: float, best: float) -> bool:
        """Lower EER, or an equal one: an EER over a finite trial list moves in steps (1 % per target
        trial with 100 targets), so equal values are common late in training, and the later epoch (the
        lower learning rate) is kept; WeSpeaker and ESPnet likewise keep (averages of) the last epochs."""
        return score <= best

    def __init__(self, cfg: dict, train_dir: str, valid_dir: str, seed: int) -> None:
        from sekd.data import SpeakerCropDataset, TrialUtteranceDataset

        super().__init__(cfg, train_dir, valid_dir, seed)
        dcfg, tcfg = cfg["data"], cfg["train"]
        self.train_set = SpeakerCropDataset(
            train_dir, dcfg["segment"], dcfg["sample_rate"], seed, int(dcfg["crop_slots"])
        )
        self.valid_set = TrialUtteranceDataset(
            valid_dir, dcfg["sample_rate"], dcfg["valid_max_seconds"], max_trials=tcfg["max_valid_trials"]
        )
        self.head: nn.Module | None = None  # the AAM-softmax classifier over the training speakers
        self.teacher_head: nn.Module | None = None
        self.margin, self.margin_warmup = 0.0, 0
        self.kd_seconds = 0.0  # time in the teacher and the KD terms (logged per epoch)
        self._kd_seconds0 = 0.0

    def setup(self, model: nn.Module, device: torch.device) -> None:
        """The speaker-classifier head (``sekd.sv.aam.HEADS``) over the training speakers (``loss`` section)."""
        from sekd.sv.aam import HEADS

        args = dict(self.cfg["loss"])
        name = args.pop("name", None)
        model_name = self.cfg["model"]["name"]
        if name not in HEADS:
            raise ConfigError(
                f"model {model_name} is a speaker-verification model: it trains with "
                f"loss.name aam (AAM-softmax: margin, scale, easy_margin, margin_warmup_steps), "
                f"not {name!r}"
            )
        self.margin_warmup = int(args.pop("margin_warmup_steps", 0) or 0)
        embed_dim = getattr(model, "embed_dim", None)
        if embed_dim is None:
            raise ConfigError(f"model {model_name} has no embed_dim")
        try:
            head = HEADS.build(name, int(embed_dim), self.train_set.num_speakers, **args)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"loss ({name}): {exc}") from None
        self.margin = head.margin
        self.head_name, self.head_args = (
            name,
            {"embed_dim": int(embed_dim), "num_classes": self.train_set.num_speakers, **args},
        )
        self.head = head.to(device)

    def modules(self) -> list[nn.Module]:
        return [self.head]

    def attach_teacher(self, ckpt: dict, where: str, device: torch.device) -> None:
        """The teacher's frozen head, when it was trained on the same speakers (logit KD needs it)."""
        from sekd.sv.aam import HEADS

        saved = ckpt.get("head")
        if not saved:
            return
        if list(saved["speakers"]) != list(self.train_set.speakers):
            logging.getLogger(__name__).warning(
                "%s: the teacher's head was trained on other speakers than %s; no teacher logits",
                where,
                self.train_set.data.path,
            )
            return
        head = HEADS.build(saved.get("name", "aam"), **saved["args"])
        head.load_state_dict(saved["state_dict"])
        for p in head.parameters():
            p.requires_grad_(False)
        self.teacher_head = head.to(device).eval()

    def loss(self, tr: Trainer, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """``(wav [B, 1, T], speaker labels [B], crop ids [B])``."""
        wav, labels, crop_ids = batch
        if self.margin_warmup:  # a function of the step only, so a resumed run sets the same margin
            self.head.set_margin(self.margin * min(1.0, tr.global_step / self.margin_warmup))
        emb, s_feats = tr.student_forward(wav)
        task, logits = self.head(emb.float(), labels)
        parts = {"task": task.item(), "acc": (logits.argmax(-1) == labels).float().mean().item()}
        if tr.teacher is None:
            return task, parts
        start = time.perf_counter()
        t_emb = t_logits = None
        t_feats: dict = {}
        if any(term.uses_teacher_output for term in tr.kd_terms) or tr.teacher_taps():
            t_emb, t_feats = tr.teacher_forward(wav)
            t_emb = t_emb.float()
            t_logits = self.teacher_head.logits(t_emb) if self.teacher_head is not None else None
        ctx = KDContext(
            wav,
            None,
            emb,
            t_emb,
            s_feats,
            t_feats,
            labels=labels,
            student_logits=logits,
            teacher_logits=t_logits,
            teacher_model=tr.teacher,
            teacher_head=self.teacher_head,
            student_model=tr.model,
            crop_ids=crop_ids if self.train_set.crop_slots else None,
        )
        total = tr.with_kd(task, ctx, parts)
        self.kd_seconds += time.perf_counter() - start
        return total, parts

    @torch.no_grad()
    def validate(self, tr: Trainer, writer) -> dict[str, float]:
        """EER (%) on the valid dir's trials: cosine of the embeddings of the trial utterances."""
        return {self.monitor: valid_eer(tr.model, self.valid_set, tr.dist.device, tr.dist)}

    def describe(self) -> dict[str, Any]:
        return {"task": "sv"}

    def state(self) -> dict[str, Any]:
        return {
            "head": {
                "name": self.head_name,
                "args": self.head_args,
                "speakers": list(self.train_set.speakers),
                "state_dict": self.head.state_dict(),
            }
        }

    def load_state(self, ckpt: dict) -> None:
        self.head.load_state_dict(ckpt["head"]["state_dict"])

    def epoch_record(self, tr: Trainer) -> dict[str, Any]:
        """What distillation cost this epoch (teacher passes and KD terms; imlkd: integrated gradients)
        and the KD terms' own counters."""
        record: dict[str, Any] = {}
        if tr.teacher is not None:
            record["kd_seconds"] = self.kd_seconds - self._kd_seconds0
        self._kd_seconds0 = self.kd_seconds
        for name, term in zip(tr.kd_names, tr.kd_terms):
            for k, v in (term.stats() if hasattr(term, "stats") else {}).items():
                record[f"kd_{name}_{k}"] = v
        return record

    def epoch_line(self, record: dict, improved: bool) -> str:
        return f"valid EER {record['valid_eer']:.2f} %{' (best)' if improved else ''}"


@torch.no_grad()
def valid_pesq(clean: torch.Tensor, est: torch.Tensor, rate: int) -> float:
    """PESQ of one validation utterance (wide band at 16 kHz, narrow band at 8 kHz), NaN where PESQ
    finds no speech (a silent or too short utterance): counted out of the mean."""
    from sekd.metrics import pesq_nb, pesq_wb

    fn = pesq_nb if rate == 8000 else pesq_wb
    try:
        return fn(clean[0].detach().cpu().numpy(), est[0].detach().cpu().numpy(), rate)
    except Exception:  # pesq's NoUtterancesError and friends: this utterance has no score
        return math.nan


def valid_sisnr(model: nn.Module, valid_set, indices, device: torch.device | str = "cpu", callback=None) -> list[float]:
    """SI-SNR (dB) of ``model`` (put in eval mode) on whole validation utterances ``indices`` of
    ``valid_set`` (an ``UtteranceDataset``), one value each; ``callback(i, key, noisy, clean, est)``
    sees each one (TensorBoard audio). What training validates with, and what
    ``sekd.bin.import_model`` re-measures a pretrained model with."""
    from sekd.data import collate_single

    model.eval()
    scores = []
    for i in indices:
        key, noisy, clean = collate_single([valid_set[i]])
        noisy, clean = noisy.to(device), clean.to(device)
        est = model(noisy)
        scores.append(si_snr(est, clean).item())
        if callback is not None:
            callback(i, key, noisy, clean, est)
    return scores


def valid_eer(model: nn.Module, valid_set, device: torch.device | str = "cpu", dist=None) -> float:
    """EER (%) of ``model`` (put in eval mode, then back in train mode) on the trials of ``valid_set``
    (a ``TrialUtteranceDataset``): cosine scores of whole-utterance embeddings; NaN when a score is
    not finite. With ``dist`` (``sekd.train.distributed``) each rank embeds its share. What training
    validates with, and what ``sekd.bin.import_model`` re-measures a pretrained model with."""
    from sekd.metrics.verification import eer
    from sekd.sv.scoring import cosine_score

    rank, world, active = (dist.rank, dist.world, dist.active) if dist is not None else (0, 1, False)
    model.eval()
    n, dim = len(valid_set), int(model.embed_dim)
    mine = torch.zeros(n, dim, dtype=torch.float64)
    with torch.no_grad():
        for i in range(rank, n, world):  # each rank its share, summed below
            _, wav = valid_set[i]
            mine[i] = model(wav.to(device)).double().cpu()[0]
    model.train()
    if active:
        mine = torch.tensor(distributed.all_sum(mine.flatten().tolist(), dist), dtype=torch.float64).view(n, dim)
    embs = {k: mine[i].numpy() for i, k in enumerate(valid_set.keys)}
    trials = valid_set.trials
    scores = cosine_score(embs, trials)
    if not np.isfinite(scores).all():
        return math.nan
    return 100.0 * eer(scores, np.array([lab for _, _, lab in trials]))
