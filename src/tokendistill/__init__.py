"""tokendistill: train small students on the input words a teacher relies on (Ballout et al., 2024)."""

__version__ = "0.1.0"
