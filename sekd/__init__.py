"""sekd: knowledge distillation for speech enhancement, as Kaldi/ESPnet-style recipes."""


def load_pretrained(path):
    """A checkpoint (``best.pt``) or a packed model (``sekd-pack``) as a ready
    :class:`sekd.infer.Enhancer`: ``load_pretrained(p)(audio, rate)``; ``.model`` is the module."""
    from sekd.infer import load_pretrained as _load

    return _load(path)
