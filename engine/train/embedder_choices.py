"""Choices of ``facescope train embedder`` that the CLI parser lists; torch-free, so building the
parser (``--help`` of every command) works on an install without the train extra."""

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("warmup_cosine", "step", "cosine_restarts")
