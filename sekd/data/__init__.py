"""Kaldi-style data directories, audio I/O and datasets."""
from sekd.data.dataset import CropDataset, UtteranceDataset, collate_single
from sekd.data.errors import DataError
from sekd.data.kaldi_dir import DataDir, read_scp

__all__ = ["CropDataset", "UtteranceDataset", "collate_single", "DataError", "DataDir", "read_scp"]
