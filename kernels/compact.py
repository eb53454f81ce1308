"""Compaction: move the kept cache slots after the first gap down over the freed ones, in place.

A layer's keys or values are `[batch, kv_heads, slots, head_dim]`. `src` lists, increasing, the
old slots that fill the new slots `start, start + 1, ...`, so `src[i] >= start + i`. This file
knows nothing about models or positions; `thread/kernels.py` loads it by path and dispatches.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the `triton` extra is optional; the reference below always works
    triton = None

HAVE_TRITON = triton is not None


def compact_reference(x: torch.Tensor, src: torch.Tensor, start: int) -> torch.Tensor:
    """Copy slots `src` of `x` to `start, start + 1, ...` in place; return `x` cut to the new length."""
    end = start + src.numel()
    x[..., start:end, :] = x.index_select(-2, src)  # the gather copies first, so overlap is safe
    return x[..., :end, :]


if HAVE_TRITON:

    @triton.jit
    def _compact_kernel(
        x_ptr,
        src_ptr,
        num_moved,
        start,
        num_heads,
        stride_b,
        stride_h,
        stride_s,
        HEAD_DIM: tl.constexpr,
        BLOCK_S: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        # One program owns one (batch, head) and one slice of head_dim, and walks the moved slots
        # block by block in increasing order: a block reads slots >= the slots it writes, and
        # every earlier block wrote only slots below them, so nothing is read after it is overwritten.
        bh = tl.program_id(0)
        base = x_ptr + (bh // num_heads) * stride_b + (bh % num_heads) * stride_h
        dims = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        dim_ok = dims < HEAD_DIM
        for block in range(0, num_moved, BLOCK_S):
            rows = block + tl.arange(0, BLOCK_S)
            row_ok = rows < num_moved
            src_rows = tl.load(src_ptr + rows, mask=row_ok, other=0)
            ok = row_ok[:, None] & dim_ok[None, :]
            tile = tl.load(base + src_rows[:, None] * stride_s + dims[None, :], mask=ok)
            tl.store(base + (start + rows)[:, None] * stride_s + dims[None, :], tile, mask=ok)
            # the next block may write slots this block read: all reads finish first
            tl.debug_barrier()


def compact_triton(x: torch.Tensor, src: torch.Tensor, start: int) -> torch.Tensor:
    """Triton version of `compact_reference`: same contract, no temporary copy of the moved slots."""
    assert HAVE_TRITON, "triton is not installed (pip install 'thread-runtime[triton]')"
    assert x.dim() == 4 and x.stride(-1) == 1, f"{x.shape=} {x.stride()=}"
    batch, num_heads, _, head_dim = x.shape
    num_moved = src.numel()
    if num_moved:
        block_d = min(64, triton.next_power_of_2(head_dim))
        grid = (batch * num_heads, triton.cdiv(head_dim, block_d))
        _compact_kernel[grid](
            x,
            src.to(device=x.device, dtype=torch.int64).contiguous(),
            num_moved,
            start,
            num_heads,
            x.stride(0),
            x.stride(1),
            x.stride(2),
            HEAD_DIM=head_dim,
            BLOCK_S=32,
            BLOCK_D=block_d,
        )
    return x[..., : start + num_moved, :]
