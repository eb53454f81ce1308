"""thread: run a reasoning model as a tree of tasks inside a bounded KV cache."""

__version__ = "0.1.0"
