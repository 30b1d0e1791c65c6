"""Feature taps: capture the outputs of submodules named by their module path.

``with FeatureTaps(model, ["encoder.0", "enhance"]) as taps: model(x)`` leaves
``taps.features == {"encoder.0": <output>, "enhance": <output>}``. The model is not
modified; hooks are removed on exit. This is the only place that knows about hooks.
"""

from __future__ import annotations

from typing import Any

from torch import nn


class FeatureTaps:
    def __init__(self, model: nn.Module, paths: list[str]) -> None:
        modules = dict(model.named_modules())
        missing = [p for p in paths if p not in modules]
        if missing:
            known = ", ".join(n for n in modules if n)
            raise KeyError(f"no module named {missing[0]!r} in {type(model).__name__}; modules: {known}")
        self.model, self.paths = model, list(dict.fromkeys(paths))
        self._modules = modules
        self.features: dict[str, Any] = {}
        self._handles: list = []

    def __enter__(self) -> "FeatureTaps":
        self.features = {}
        for path in self.paths:

            def hook(_module, _inputs, output, path=path):
                self.features[path] = output

            self._handles.append(self._modules[path].register_forward_hook(hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
