"""Enhancement models, registered by name.

Every model takes a waveform batch ``[B, C, T]`` (``[B, T]`` is read as ``C = 1``)
and returns the enhanced waveform ``[B, T]``. ``build_model(name, **args)`` makes one
from a config; ``register_model`` adds a class to the registry.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from sekd.registry import Registry

MODELS: Registry[type[nn.Module]] = Registry("model")
register_model = MODELS.register  # class decorator: make ``cls`` buildable as ``name`` from configs


def build_model(name: str, **args: Any) -> nn.Module:
    """Instantiate the registered model ``name`` with constructor arguments ``args``."""
    return MODELS.build(name, **args)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


from sekd.models import (  # noqa: E402  (importing a model module registers it)
    dccrn,
    dpdcrn,
    ecapa,  # noqa: E402  (speaker verification: waveform -> embedding)
    manner,
    uformer,
)

# Named paper-size configurations: preset name -> (model name, constructor arguments).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    **{k: ("dccrn", v) for k, v in dccrn.CONFIGS.items()},
    **{k: ("dpdcrn", v) for k, v in dpdcrn.CONFIGS.items()},
    **{k: ("manner", v) for k, v in manner.CONFIGS.items()},
    **{k: ("uformer", v) for k, v in uformer.CONFIGS.items()},
}

# Speaker-verification presets (models with ``task = "sv"``: waveform -> embedding), kept apart
# from PRESETS, whose models all map a waveform to a waveform.
SV_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {k: ("ecapa_tdnn", v) for k, v in ecapa.CONFIGS.items()}
