"""Entrypoints: one module per command (python -m sekd.bin.<name>)."""
