"""Training configs: defaults, YAML files and ``--a.b value`` command-line overrides."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "model": {"name": None, "args": {}},
    "data": {
        "sample_rate": 16000,
        "segment": 2.0,  # seconds per training crop
        "batch_size": 8,
        "num_workers": 0,
        "channels": None,  # input channels to expect (None: any)
        "ref_channel": 0,
        # On-the-fly mixing (sekd.data.MixingDataset): an scp of noise recordings, relative
        # paths taken from the training data dir; the train set's spk1.scp is the clean speech.
        "noise_scp": None,
        "snr_range": [0.0, 40.0],  # dB, uniform
        "level_range": [-35.0, -15.0],  # dBFS of the mixture, uniform
        # crop_slots 0: a new crop every epoch; K: K crops per utterance, used in turn (teacher targets cacheable)
        "crop_slots": 0,
        # Speaker verification (models with task "sv"):
        "valid_max_seconds": None,  # embed at most the first seconds of each validation utterance (None: whole)
    },
    "loss": {"name": "sisnr"},  # sv models: {name: aam, margin: 0.2, scale: 30}
    "optim": {"name": "adam", "lr": 1.0e-3, "weight_decay": 0.0},
    "scheduler": {"name": "plateau", "factor": 0.5, "patience": 1},
    "train": {
        "seed": 0,
        "max_epochs": 10,
        "steps_per_epoch": None,  # cap on batches per epoch (None: the whole set)
        "grad_clip": 5.0,
        "save_every_steps": 50,  # mid-epoch checkpoint interval, for exact resume
        "log_every_steps": 10,
        "num_audio_examples": 2,  # validation utterances written to TensorBoard
        "max_valid_utts": None,
        "max_valid_trials": None,  # sv: validate on the first N trials of the valid dir's trials file
        "num_threads": None,
        "device": "auto",  # auto (cuda:<local rank> when a GPU is visible), cuda, cpu
        "amp": "none",  # none, bf16, fp16: autocast on GPUs (no-op on CPU)
        "max_nonfinite": 10,  # batches with a NaN/Inf loss skipped before the run stops with an error
        # enhancement: the validation score that picks best.pt (and drives a plateau scheduler): sisnr, or
        # pesq (PESQ-WB of the validation utterances, as the official MANNER training; SI-SNR still logged)
        "best_metric": "sisnr",
    },
    # teacher_config / student_config: the recipe systems a KD config pairs (sekd.bin.plan)
    # ablation: a config of the method's teacher-free terms, trained as its baseline (sekd.bin.plan);
    # weight_scale multiplies every term's weight (enh.sh --kd_weight_scales sweeps it on validation)
    # cache_teacher: offline KD, the teacher's output and tapped features of each crop computed once and
    # kept in memory (needs data.crop_slots >= 1: fixed crops), cache_dtype float32 or float16
    "kd": {
        "teacher": None,
        "task_weight": 1.0,
        "terms": [],
        "teacher_config": None,
        "student_config": None,
        "ablation": None,
        "weight_scale": 1.0,
        "cache_teacher": False,
        "cache_dtype": "float32",
    },
}

# Sections whose keys are free-form (passed to a constructor): overrides may add keys.
FREE_SECTIONS = ("model.args", "optim", "scheduler", "loss")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that also reads ``1e-3`` (no dot) as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text):
    return yaml.load(text, Loader=_Loader)


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def merge(base: dict, update: dict, path: str = "", free: bool = False) -> dict:
    """Recursive dict merge; ``update`` wins. Unknown keys outside free sections are errors."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        where = f"{path}.{key}" if path else key
        if key not in out and not free:
            kind = "key" if path else "section"
            raise ConfigError(f"unknown config {kind} {where!r}")
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merge(out[key], value, where, free or where in FREE_SECTIONS)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return data


def parse_overrides(args: list[str]) -> dict:
    """Turn ``["--train.max_epochs", "3", "--optim.lr=1e-4"]`` into a nested dict (values as YAML)."""
    out: dict = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or "." not in arg.split("=", 1)[0]:
            raise ConfigError(f"unrecognised argument {arg!r} (config overrides look like --section.key value)")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"override {arg!r} has no value")
            key, raw = arg[2:], args[i + 1]
            i += 2
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml_load(raw)
    return out


def build_config(files: list[str | Path], overrides: list[str] | None = None) -> dict:
    """Defaults, then each YAML file in order, then command-line overrides."""
    cfg = copy.deepcopy(DEFAULTS)
    for f in files:
        try:
            cfg = merge(cfg, load_yaml(f))
        except ConfigError as exc:
            if str(exc).startswith(str(f)):
                raise
            raise ConfigError(f"{f}: {exc}") from None
    if overrides:
        cfg = merge(cfg, parse_overrides(overrides))
    if not cfg["model"]["name"]:
        raise ConfigError("the config names no model (model.name)")
    check_values(cfg)
    return cfg


# Values whose type and range are checked (the rest are free-form or checked where they are used):
# path -> (kind, lower bound, bound inclusive, None allowed).
CHECKS: dict[str, tuple[str, float | None, bool, bool]] = {
    "data.sample_rate": ("int", 1, True, False),
    "data.segment": ("number", 0, False, False),
    "data.batch_size": ("int", 1, True, False),
    "data.num_workers": ("int", 0, True, False),
    "data.channels": ("int", 1, True, True),
    "data.ref_channel": ("int", 0, True, False),
    "data.crop_slots": ("int", 0, True, False),
    "data.valid_max_seconds": ("number", 0, False, True),
    "optim.lr": ("number", 0, False, False),
    "optim.weight_decay": ("number", 0, True, False),
    "train.seed": ("int", None, True, False),
    "train.max_epochs": ("int", 1, True, False),
    "train.steps_per_epoch": ("int", 1, True, True),
    "train.grad_clip": ("number", 0, True, True),
    "train.save_every_steps": ("int", 0, True, True),
    "train.log_every_steps": ("int", 1, True, False),
    "train.num_audio_examples": ("int", 0, True, False),
    "train.max_valid_utts": ("int", 1, True, True),
    "train.max_valid_trials": ("int", 1, True, True),
    "train.num_threads": ("int", 1, True, True),
    "train.max_nonfinite": ("int", 0, True, False),
    "kd.task_weight": ("number", 0, True, False),
    "kd.weight_scale": ("number", 0, False, False),
}


def check_values(cfg: dict) -> None:
    """Types and ranges of the values in ``CHECKS`` (and the SNR/level ranges): a wrong one is a
    ``ConfigError`` naming the option, what it expects and what it got."""
    for path, (kind, low, inclusive, nullable) in CHECKS.items():
        section, key = path.split(".")
        value = cfg.get(section, {}).get(key)
        if value is None and nullable:
            continue
        ok_type = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
        ok_type = ok_type and not isinstance(value, bool)
        ok_range = ok_type and (low is None or (value >= low if inclusive else value > low))
        if not ok_range:
            what = "an integer" if kind == "int" else "a number"
            bound = "" if low is None else f" {'>=' if inclusive else '>'} {low:g}"
            none = " (or null)" if nullable else ""
            raise ConfigError(f"{path}: expected {what}{bound}{none}, got {value!r}")
    for key in ("snr_range", "level_range"):
        value = cfg["data"][key]
        if not (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and value[0] <= value[1]
        ):
            raise ConfigError(f"data.{key}: expected [low, high] in dB with low <= high, got {value!r}")
    if cfg.get("train", {}).get("best_metric", "sisnr") not in ("sisnr", "pesq"):
        raise ConfigError(f"train.best_metric: expected sisnr or pesq, got {cfg['train']['best_metric']!r}")


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
