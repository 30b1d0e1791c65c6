"""sekd: knowledge distillation for speech enhancement, as Kaldi/ESPnet-style recipes."""

from pathlib import Path

from setuptools import find_packages, setup

ENTRYPOINTS = {
    "sekd-simulate-mini": "sekd.bin.simulate_mini:main",
    "sekd-train": "sekd.bin.train:main",
    "sekd-distill": "sekd.bin.distill:main",
    "sekd-enhance": "sekd.bin.enhance:main",
    "sekd-score": "sekd.bin.score:main",
    "sekd-score-sv": "sekd.bin.score_sv:main",
    "sekd-report": "sekd.bin.report:main",
    "sekd-pack": "sekd.bin.pack:main",
    "sekd-export": "sekd.bin.export:main",
    "sekd-check-data": "sekd.bin.check_data:main",
    "sekd-profile": "sekd.bin.profile:main",
    "sekd-plan": "sekd.bin.plan:main",
    "sekd-kd-grad-ratio": "sekd.bin.kd_grad_ratio:main",
    "sekd-download": "sekd.bin.download:main",
    "sekd-extract-embeddings": "sekd.bin.extract_embeddings:main",
    "sekd-simulate-mini-spk": "sekd.bin.simulate_mini_spk:main",
    "sekd-evaluate": "sekd.bin.evaluate:main",
    "sekd-import-model": "sekd.bin.import_model:main",
    "sekd-choose-weight": "sekd.bin.choose_weight:main",
}

setup(
    name="sekd",
    version="0.1.0",
    description="Knowledge distillation toolkit for speech enhancement (Kaldi/ESPnet-style recipes)",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["sekd", "sekd.*"]),
    install_requires=[
        # torch is pinned by tools/install.sh (a CPU build where there is no GPU);
        # a range here lets an existing install satisfy it without a re-download.
        "torch>=2.1",
        "numpy>=1.24",
        "scipy>=1.10",
        "soundfile>=0.12",
        "kaldiio>=2.18",
        "pesq>=0.0.4",
        "pystoi>=0.4.1",
        "tensorboard>=2.14",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "espeakng-loader>=0.2.4",
        "threadpoolctl>=3.1",
        "matplotlib>=3.7",
        "soxr>=0.3",
        "pyroomacoustics>=0.10",  # egs/mini_foa: simulated rooms (sekd.data.synth.room)
    ],
    extras_require={
        "test": ["pytest>=7.4", "pytest-timeout>=2.2", "pytest-xdist>=3.5", "ruff>=0.6"],
        # DNSMOS P.835/P.808: Microsoft's ONNX models (shipped by speechmos), run with onnxruntime.
        "dnsmos": ["onnxruntime>=1.16", "speechmos>=0.0.1.1"],
        # The L3DAS23 metric's ASR (a wav2vec 2.0 checkpoint the user provides).
        "asr": ["transformers>=4.30"],
        # sekd-export --format onnx and running ONNX models.
        "export": ["onnx>=1.15", "onnxruntime>=1.16"],
    },
    entry_points={"console_scripts": [f"{k}={v}" for k, v in ENTRYPOINTS.items()]},
)
