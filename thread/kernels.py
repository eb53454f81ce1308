"""Dispatch for the cache kernels in the top-level `kernels/` folder: Triton on CUDA, torch elsewhere.

The kernel files are loaded by path under private module names, never as a package `kernels`,
which would shadow the PyPI package of that name that transformers imports. This module does
not decide what to compact or rotate; `thread/cache.py` does.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from types import ModuleType

import torch

from thread.assets import asset_dir

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "reference", "triton")
_loaded: dict[str, ModuleType] = {}
_warned = False


def load_kernel_module(name: str, module_name: str | None = None) -> ModuleType:
    """Load `kernels/<name>.py` by path; pass a fresh `module_name` to get a new copy of it."""
    module_name = module_name or f"thread._kernel_{name}"
    if module_name in _loaded:
        return _loaded[module_name]
    path = asset_dir("kernels") / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"kernel file {path} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    _loaded[module_name] = module
    return module


def _use_triton(x: torch.Tensor, module: ModuleType, backend: str) -> bool:
    global _warned
    if backend not in BACKENDS:
        raise ValueError(f"kernel backend {backend!r} is not one of {BACKENDS}")
    if backend == "reference" or (backend == "auto" and not x.is_cuda):
        return False
    if module.HAVE_TRITON:
        return True
    if backend == "triton":
        raise RuntimeError("kernel backend 'triton' asked for, but triton is not installed")
    if not _warned:
        logger.warning("triton is not installed: cache kernels fall back to the torch reference")
        _warned = True
    return False


def compact(x: torch.Tensor, src: torch.Tensor, start: int, backend: str = "auto") -> torch.Tensor:
    """Move slots `src` of `x` ([B, H, S, D]) to `start, start + 1, ...` in place; return the cut view."""
    module = load_kernel_module("compact")
    if _use_triton(x, module, backend):
        return module.compact_triton(x, src, start)
    return module.compact_reference(x, src, start)


def rerotate(
    keys: torch.Tensor,
    start: int,
    delta: torch.Tensor,
    inv_freq: torch.Tensor,
    backend: str = "auto",
) -> None:
    """Rotate the RoPE of `keys[..., start + i, :]` by `delta[i]` positions, in place."""
    module = load_kernel_module("rope")
    if _use_triton(keys, module, backend):
        module.rerotate_triton(keys, start, delta, inv_freq)
    else:
        module.rerotate_reference(keys, start, delta, inv_freq)
