"""The training loop shared by teacher, baseline-student and distillation runs, of every task.

Outputs under ``out_dir``: ``config.yaml`` (resolved), ``train.log`` (plain text),
``checkpoints/last.pt`` (everything needed to resume exactly) and
``checkpoints/best.pt`` (model only, best validation score), ``model_info.json``;
TensorBoard events under ``tensorboard_dir`` (one log root per recipe so curves overlay).

The loop knows no task: the model names one (``sekd.train.tasks``: ``enh``, ``sv``), which
supplies the datasets, the loss of a batch, the modules trained beside the model (the
speaker head), the validation scores and the one of them that chooses ``best.pt``.

Exact resume (``sekd.train.resume``): crops are a function of ``(seed, epoch, index)``, the batch order of
``(seed, epoch)``, and ``last.pt`` carries the position inside the epoch and every RNG
state; a run killed at any point and restarted with ``resume=True`` ends with the same
weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from sekd.distill import KDContext
from sekd.distill.taps import FeatureTaps
from sekd.models import MODELS, build_model, count_parameters
from sekd.output_dir import write_atomic
from sekd.train import distributed
from sekd.train.checkpoint import git_commit, save_atomic
from sekd.train.config import ConfigError, dump
from sekd.train.distiller import Distiller
from sekd.train.kd_setup import build_kd
from sekd.train.optim import build_optimizer, build_scheduler, is_per_step
from sekd.train.resume import TrainingError, restore, trainer_state
from sekd.train.run_log import NoWriter, command_line, open_log, quiet_logger
from sekd.train.tasks import TASKS


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Train ``cfg['model']`` on ``train_dir``, validating on ``valid_dir`` each epoch.

    When ``cfg['kd']['teacher']`` names a checkpoint, the teacher is loaded frozen (eval
    mode, no gradients) and the KD terms of ``cfg['kd']['terms']`` are added to the task
    loss: ``L = task_weight * L_task + sum_i weight_i * L_i``.
    """

    def __init__(
        self,
        cfg: dict,
        train_dir: str,
        valid_dir: str,
        out_dir: str,
        tensorboard_dir: str | None = None,
        role: str = "model",
        progress: bool | None = None,
    ) -> None:
        self.cfg, self.role = cfg, role
        self.data_dirs = {"train_dir": str(train_dir), "valid_dir": str(valid_dir)}
        self.commit = git_commit()  # the code this process runs: read once, a long run may outlive a commit
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.tb_dir = (
            Path(tensorboard_dir) if tensorboard_dir else self.out_dir.parent / "tensorboard" / self.out_dir.name
        )
        self.progress = sys.stderr.isatty() if progress is None else progress
        tcfg, dcfg = cfg["train"], cfg["data"]
        if tcfg["num_threads"]:
            torch.set_num_threads(int(tcfg["num_threads"]))
        torch.set_flush_denormal(True)  # denormals in near-silent audio slow CPU kernels several-fold
        self.dist = distributed.setup(str(tcfg["device"]))
        if int(dcfg["batch_size"]) % self.dist.world:
            raise ConfigError(
                f"data.batch_size {dcfg['batch_size']} is not a multiple of the {self.dist.world} processes"
            )
        amp = str(tcfg["amp"])
        if amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"train.amp must be none, bf16 or fp16, not {amp!r}")
        # Mixed precision only where it helps (GPUs); on CPU the option changes nothing.
        self.amp_enabled = amp != "none" and self.dist.device.type == "cuda"
        self.amp_dtype = torch.float16 if amp == "fp16" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_enabled and amp == "fp16")
        self.seed = int(tcfg["seed"])
        model_cls = MODELS.get(cfg["model"]["name"])
        self.task = TASKS.build(str(getattr(model_cls, "task", "enh")), cfg, str(train_dir), str(valid_dir), self.seed)
        self.train_set, self.valid_set = self.task.train_set, self.task.valid_set
        seed_everything(self.seed)
        self.model = build_model(cfg["model"]["name"], **cfg["model"]["args"]).to(self.dist.device)
        self.global_step = 0  # read by the margin warm-up (the KD modules are built with one batch below)
        self.task.setup(self.model, self.dist.device)
        kd = build_kd(cfg, self.task, self.dist.device)
        self.kd_terms, self.kd_weights, self.kd_names = kd.terms, kd.weights, kd.names
        self.teacher, self.teacher_cache = kd.teacher, kd.cache
        self.kd_terms.to(self.dist.device)
        if self.kd_terms:
            try:
                self._build_kd_modules()
            except (KeyError, ValueError) as exc:  # a tap path the model lacks, a layout that does not fit
                raise ConfigError(
                    f"kd.terms ({', '.join(self.kd_names)}) do not fit student "
                    f"{cfg['model']['name']} / this teacher: {exc}"
                ) from None
        if self.dist.active and self.dist.device.type == "cuda":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        # Everything trained (model, KD terms and their adapters, the task's head) in one module whose
        # forward is the batch loss; DDP wraps it once, the optimizer steps and the clip clips its parameters.
        self.distiller = Distiller(self.model, self.kd_terms, self.task.modules(), lambda b: self.task.loss(self, b))
        self.trained_params = list(self.distiller.parameters())
        self.net: nn.Module = self.distiller  # what training steps call: the distiller, or its DDP wrapper
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(
                self.distiller, device_ids=[self.dist.device] if self.dist.device.type == "cuda" else None
            )
        ocfg = dict(cfg["optim"])
        self.optimizer = build_optimizer(self.trained_params, **ocfg)
        scfg = dict(cfg["scheduler"])
        scfg.setdefault("mode", self.task.mode)  # plateau: on the monitored score
        self.per_step_scheduler = is_per_step(scfg.get("name", "plateau"))
        self.scheduler = build_scheduler(
            self.optimizer, tcfg["max_epochs"], **scfg, steps_per_epoch=len(self.epoch_batches(0))
        )
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.epoch_sums: dict[str, float] = {}  # the epoch's summed loss parts so far (kept across a resume)
        self.epoch_steps = 0
        self.nonfinite = 0  # batches skipped for a non-finite loss
        self.best: float = self.task.worst
        self.history: list[dict] = []
        self.log = quiet_logger()  # the run's log file is opened by run(): building writes nothing

    # -- set-up -----------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch``: a permutation drawn from ``(seed, epoch)``, full batches only."""
        bs = int(self.cfg["data"]["batch_size"])
        if len(self.train_set) < bs:
            raise ConfigError(
                f"data.batch_size {bs} is larger than the training set "
                f"({len(self.train_set)} utterances in {self.data_dirs['train_dir']})"
            )
        perm = np.random.default_rng([self.seed, epoch, 7]).permutation(len(self.train_set)).tolist()
        batches = [perm[i : i + bs] for i in range(0, len(perm) - bs + 1, bs)]
        cap = self.cfg["train"]["steps_per_epoch"]
        return batches[:cap] if cap else batches

    def batch(self, indices) -> list[torch.Tensor]:
        """Training items ``indices`` stacked into one batch on the device (outside the loop's loader:
        the KD set-up pass, sekd-kd-grad-ratio, benchmarks)."""
        return [torch.stack(x).to(self.dist.device) for x in zip(*[self.train_set[i] for i in indices])]

    def _build_kd_modules(self) -> None:
        """Run one small batch through student, teacher and KD terms (no gradients, no state
        change): terms create their adapters (lazily, at the sizes of the features they see)
        before the optimizer is built, so the adapters train with the student."""
        batch = self.task.probe_batch(self.batch(range(min(2, len(self.train_set)))))
        self.model.eval()
        with torch.no_grad(), torch.random.fork_rng():
            self.task.loss(self, tuple(batch))
        self.model.train()

    # -- checkpoints ------------------------------------------------------------
    def _describe(self) -> dict[str, Any]:
        return {
            "model_name": self.cfg["model"]["name"],
            "model_args": self.cfg["model"]["args"],
            "config": self.cfg,
            "git_commit": self.commit,
            "seed": self.seed,
            "role": self.role,
            "num_params": count_parameters(self.model),
            "kd": self.kd_names,
            **self.task.describe(),
        }

    def save(self, name: str, with_trainer: bool) -> None:
        if not self.dist.main:
            return
        ckpt = self._describe()
        ckpt["state_dict"] = self.model.state_dict()
        ckpt["epoch"], ckpt[self._best_key] = self.epoch, self.best
        ckpt.update(self.task.state())
        if with_trainer:
            ckpt["trainer"] = trainer_state(self)
        save_atomic(ckpt, self.ckpt_dir / name)

    def resume(self) -> bool:
        """Continue from ``checkpoints/last.pt`` when there is one (``sekd.train.resume``)."""
        return restore(self, self.ckpt_dir / "last.pt")

    # -- one step ---------------------------------------------------------------
    def student_taps(self) -> list[str]:
        return [p for term in self.kd_terms for p in term.student_taps()]

    def teacher_taps(self) -> list[str]:
        return [p for term in self.kd_terms for p in term.teacher_taps()]

    @property
    def _best_key(self) -> str:
        return f"best_{self.task.monitor}"

    def compute_loss(self, *batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss and its parts for one batch (the task's: SE ``(noisy, clean[, crop ids])``, SV
        ``(wav, speaker labels, crop ids)``), through the distiller (and DDP when distributed)."""
        return self.net(*batch)

    def student_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """The student's output and the features the KD terms tap (called inside the distiller's forward)."""
        with (
            FeatureTaps(self.model, self.student_taps()) as taps,
            torch.autocast(self.dist.device.type, self.amp_dtype, enabled=self.amp_enabled),
        ):
            out = self.model(x)
        return out, taps.features

    def teacher_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """The frozen teacher's output and the features the KD terms tap, without gradients."""
        with (
            torch.no_grad(),
            FeatureTaps(self.teacher, self.teacher_taps()) as taps,
            torch.autocast(self.dist.device.type, self.amp_dtype, enabled=self.amp_enabled),
        ):
            out = self.teacher(x)
        return out, taps.features

    def with_kd(self, task: torch.Tensor, ctx: KDContext, parts: dict[str, float]) -> torch.Tensor:
        """``task_weight * task`` plus every weighted KD term on ``ctx``; each term's value, and the
        parts it reports (``last_parts``, e.g. imlkd's instance/class/batch levels), go into ``parts``."""
        total = self.cfg["kd"]["task_weight"] * task
        for name, weight, term in zip(self.kd_names, self.kd_weights, self.kd_terms):
            value = term(ctx)
            parts[f"kd_{name}"] = value.item()
            for k, v in getattr(term, "last_parts", {}).items():
                parts[f"kd_{name}_{k}"] = v
            total = total + weight * value
        return total

    def _buffers(self) -> list[torch.Tensor]:
        return list(self.distiller.buffers())

    def _skip_nonfinite(self, loss: torch.Tensor, indices: list[int]) -> bool:
        """True (the batch is skipped: no update) when the loss is NaN or Inf on any rank; after more than
        ``train.max_nonfinite`` such batches the run stops with an error naming the last one's utterances."""
        bad = float(not torch.isfinite(loss.detach()).item())
        if self.dist.active:
            bad = distributed.all_sum([bad], self.dist)[0]
        if not bad:
            return False
        self.nonfinite += 1
        keys = self.train_set.data.utt_ids if hasattr(self.train_set, "data") else None
        utts = ", ".join(keys[i] for i in indices) if keys is not None else str(indices)
        self.log.warning(
            "epoch %d step %d: non-finite loss, batch skipped (%d so far; utterances: %s)",
            self.epoch + 1,
            self.step_in_epoch + 1,
            self.nonfinite,
            utts,
        )
        limit = int(self.cfg["train"]["max_nonfinite"])
        if self.nonfinite > limit:
            raise TrainingError(
                f"{self.nonfinite} batches with a non-finite loss (train.max_nonfinite {limit}), "
                f"the last with utterances {utts}: the run diverged (learning rate too high?) "
                f"or the data holds NaN/Inf samples"
            )
        self.optimizer.zero_grad(set_to_none=True)
        return True

    def dry_run(self) -> dict[str, Any]:
        """One real training step's forward and backward on the first batch of epoch 1 (this rank's
        share), without an optimizer step: what ``--dry_run`` checks before a long run. Writes nothing
        and leaves weights, statistics and RNG states as they were. Raises ``TrainingError`` for a
        non-finite loss; ``no_grad``: the trained parameters the loss does not reach at all (not a zero
        gradient, e.g. of a unit a ReLU silences on this batch, but no gradient: a wiring fault)."""
        indices = distributed.shard(self.epoch_batches(0)[0], self.dist)
        self.train_set.set_epoch(0)
        buffers = [b.detach().clone() for b in self._buffers()]
        with torch.random.fork_rng():
            loss, parts = self.compute_loss(*self.batch(indices))
            if not torch.isfinite(loss.detach()).item():
                raise TrainingError(f"the first training batch gives a non-finite loss ({parts})")
            loss.backward()
        no_grad = [name for name, p in self.distiller.named_parameters() if p.requires_grad and p.grad is None]
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for b, saved in zip(self._buffers(), buffers):
                b.copy_(saved)
        return {"loss": loss.item(), **parts, "no_grad": no_grad}

    # -- validation -------------------------------------------------------------
    def validate(self, writer=None) -> dict[str, float]:
        """The task's validation scores (``self.task.monitor`` among them)."""
        return self.task.validate(self, writer)

    # -- the loop ---------------------------------------------------------------
    def run(self, resume: bool = False) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        tcfg = self.cfg["train"]
        self.log = open_log(self.out_dir, self.dist.main)
        resumed = resume and self.resume()  # refuses a changed config before config.yaml is touched
        if self.dist.main:
            (self.out_dir / "config.yaml").write_text(dump(self.cfg))
        if not resumed:
            self.log.info(
                "training %s (%s, %d parameters) in %s on %s%s",
                self.role,
                self.cfg["model"]["name"],
                count_parameters(self.model),
                self.out_dir,
                self.dist.device,
                f" x {self.dist.world} processes" if self.dist.active else "",
            )
        writer = SummaryWriter(str(self.tb_dir), purge_step=self.global_step or None) if self.dist.main else NoWriter()
        self.model.train()
        start = time.time()
        while self.epoch < tcfg["max_epochs"]:
            self.train_set.set_epoch(self.epoch)
            batches = self.epoch_batches(self.epoch)
            mine = [distributed.shard(b, self.dist) for b in batches[self.step_in_epoch :]]
            loader = DataLoader(
                self.train_set,
                batch_sampler=mine,
                num_workers=int(self.cfg["data"]["num_workers"]),
                generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch),
            )
            bar = (
                tqdm(
                    loader,
                    total=len(batches),
                    initial=self.step_in_epoch,
                    disable=not self.progress,
                    desc=f"epoch {self.epoch + 1}/{tcfg['max_epochs']}",
                    leave=False,
                )
                if self.dist.main
                else loader
            )
            sums, steps_run = self.epoch_sums, self.epoch_steps  # a resumed epoch continues its means
            epoch_start = time.time()
            for indices, batch in zip(batches[self.step_in_epoch :], bar):
                # BatchNorm statistics: a batch skipped for a non-finite loss must not change them either
                buffers = [b.detach().clone() for b in self._buffers()]
                loss, parts = self.compute_loss(*(x.to(self.dist.device) for x in batch))
                if self._skip_nonfinite(loss, indices):
                    with torch.no_grad():
                        for b, saved in zip(self._buffers(), buffers):
                            b.copy_(saved)
                    self.step_in_epoch += 1
                    self.global_step += 1
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if tcfg["grad_clip"]:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.trained_params, float(tcfg["grad_clip"]))
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if self.per_step_scheduler:
                    self.scheduler.step()
                if self.dist.active:  # what is logged: the mean over the ranks' shares of the batch
                    values = distributed.all_sum([loss.item(), *parts.values()], self.dist)
                    loss = torch.tensor(values[0] / self.dist.world)
                    parts = {k: v / self.dist.world for k, v in zip(parts, values[1:])}
                self.step_in_epoch += 1
                self.global_step += 1
                steps_run += 1
                self.epoch_steps = steps_run
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                if self.dist.main:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
                if self.global_step % int(tcfg["log_every_steps"]) == 0:
                    writer.add_scalar("train/loss", loss.item(), self.global_step)
                    for k, v in parts.items():
                        writer.add_scalar(f"train/{k}", v, self.global_step)
                    self.log.info(
                        "epoch %d step %d/%d loss %.4f %s",
                        self.epoch + 1,
                        self.step_in_epoch,
                        len(batches),
                        loss.item(),
                        " ".join(f"{k} {v:.4f}" for k, v in parts.items()),
                    )
                every = tcfg["save_every_steps"]
                if every and self.step_in_epoch % int(every) == 0 and self.step_in_epoch < len(batches):
                    self.save("last.pt", with_trainer=True)
            if self.dist.main:
                bar.close()
            n = max(steps_run, 1)
            scores = self.validate(writer)
            metric = scores[self.task.monitor]
            lr = self.optimizer.param_groups[0]["lr"]
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(metric)
            elif self.scheduler is not None and not self.per_step_scheduler:
                self.scheduler.step()
            record = {"epoch": self.epoch + 1, **scores, "lr": lr, **{f"train_{k}": v / n for k, v in sums.items()}}
            record["seconds"] = time.time() - epoch_start  # training and validation of this epoch
            record.update(self.task.epoch_record(self))
            self.history.append(record)
            for k, v in scores.items():
                writer.add_scalar(k.replace("_", "/", 1), v, self.global_step)
            writer.add_scalar("train/lr", lr, self.global_step)
            for k, v in sums.items():  # epoch means: one point per epoch, whatever the logging interval
                writer.add_scalar(f"epoch/{k}", v / n, self.global_step)
            self.epoch += 1
            self.step_in_epoch = 0
            self.epoch_sums, self.epoch_steps = {}, 0
            improved = self.task.better(metric, self.best)  # NaN (a diverged model) is never best
            kd = f", KD {record['kd_seconds']:.0f} s of {record['seconds']:.0f} s" if "kd_seconds" in record else ""
            self.log.info(
                "epoch %d done: %s, lr %.2e, %.0f s%s",
                self.epoch,
                self.task.epoch_line(record, improved),
                lr,
                time.time() - start,
                kd,
            )
            if self.teacher_cache is not None:
                c = self.teacher_cache.stats()
                self.log.info(
                    "teacher cache: %d crops, %.1f MB, %d hits, %d teacher runs so far",
                    c["crops"],
                    c["bytes"] / 2**20,
                    c["hits"],
                    c["misses"],
                )
            if improved:
                self.best = metric
                self.save("best.pt", with_trainer=False)
            self.save("last.pt", with_trainer=True)
        writer.close()
        distributed.barrier(self.dist)
        if not (self.ckpt_dir / "best.pt").exists():
            raise TrainingError(
                f"{self.out_dir}: no epoch reached a finite validation score (the model diverged?), "
                f"so there is no best.pt; see {self.out_dir / 'train.log'}"
            )
        info = {
            **{k: v for k, v in self._describe().items() if k != "config"},
            self._best_key: self.best,
            **self.task.summary(self.history, self.best),
            "epochs": self.epoch,
            "steps": self.global_step,
            "teacher": self.cfg["kd"]["teacher"],
            "command": command_line(),
            **self.data_dirs,
            # wall time over the epochs, resumed runs included (what the report's Train column shows)
            "train_seconds": sum(r.get("seconds", 0.0) for r in self.history),
            "history": self.history,
        }
        if self.dist.main:
            write_atomic(self.out_dir / "model_info.json", json.dumps(info, indent=2))
        return info
