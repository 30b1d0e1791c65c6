"""Kaldi-style data directories, audio I/O and datasets.

The datasets (``sekd.data.dataset``) need torch; they are imported on first use, so tools
that only read data dirs (the scorer, the data checks) start without loading torch.
"""

from sekd.data.errors import DataError
from sekd.data.kaldi_dir import DataDir, read_scp

__all__ = [
    "CropDataset",
    "MixingDataset",
    "UtteranceDataset",
    "SpeakerCropDataset",
    "TrialUtteranceDataset",
    "collate_single",
    "DataError",
    "DataDir",
    "read_scp",
]
_LAZY = (
    "CropDataset",
    "MixingDataset",
    "UtteranceDataset",
    "SpeakerCropDataset",
    "TrialUtteranceDataset",
    "collate_single",
)


def __getattr__(name: str):
    if name in _LAZY:
        from sekd.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'sekd.data' has no attribute {name!r}")
