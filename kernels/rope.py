"""RoPE re-rotation of cached keys: turn a key stored at position p into the key at p + delta.

RoPE is additive in angle, R(p + delta) = R(delta) R(p), so a stored (already rotated) key moves
by one more rotation and no recompute. The layout is the rotate-half one of Llama, Qwen and
Mistral: dimension j pairs with j + head_dim / 2, both turned by angle `delta * inv_freq[j]`.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the `triton` extra is optional; the reference below always works
    triton = None

HAVE_TRITON = triton is not None


def rerotate_reference(
    keys: torch.Tensor, start: int, delta: torch.Tensor, inv_freq: torch.Tensor
) -> None:
    """Rotate `keys[..., start + i, :]` by `delta[i]` positions, in place (angles in fp32)."""
    end = start + delta.numel()
    half = keys.shape[-1] // 2
    angle = delta.to(keys.device, torch.float32)[:, None] * inv_freq.to(keys.device, torch.float32)
    cos, sin = angle.cos(), angle.sin()  # [m, head_dim / 2]
    k1 = keys[..., start:end, :half].float()  # [B, H, m, head_dim / 2]
    k2 = keys[..., start:end, half:].float()
    rotated_1, rotated_2 = k1 * cos - k2 * sin, k2 * cos + k1 * sin
    keys[..., start:end, :half] = rotated_1.to(keys.dtype)
    keys[..., start:end, half:] = rotated_2.to(keys.dtype)


if HAVE_TRITON:

    @triton.jit
    def _rerotate_kernel(
        keys_ptr,
        delta_ptr,
        inv_freq_ptr,
        num_rows,
        start,
        num_heads,
        stride_b,
        stride_h,
        stride_s,
        HALF: tl.constexpr,
        BLOCK_S: tl.constexpr,
        BLOCK_HALF: tl.constexpr,
    ):
        # One program rotates BLOCK_S rows of one (batch, head); every element is read then
        # written by the same program, so in place is safe.
        bh = tl.program_id(0)
        base = keys_ptr + (bh // num_heads) * stride_b + (bh % num_heads) * stride_h
        rows = tl.program_id(1) * BLOCK_S + tl.arange(0, BLOCK_S)
        dims = tl.arange(0, BLOCK_HALF)
        row_ok = rows < num_rows
        ok = row_ok[:, None] & (dims < HALF)[None, :]
        delta = tl.load(delta_ptr + rows, mask=row_ok, other=0.0)
        inv_freq = tl.load(inv_freq_ptr + dims, mask=dims < HALF, other=0.0)
        angle = delta[:, None] * inv_freq[None, :]
        cos, sin = tl.cos(angle), tl.sin(angle)
        first = base + (start + rows)[:, None] * stride_s + dims[None, :]
        k1 = tl.load(first, mask=ok, other=0.0)
        k2 = tl.load(first + HALF, mask=ok, other=0.0)
        out_1 = k1.to(tl.float32) * cos - k2.to(tl.float32) * sin
        out_2 = k2.to(tl.float32) * cos + k1.to(tl.float32) * sin
        tl.store(first, out_1.to(k1.dtype), mask=ok)
        tl.store(first + HALF, out_2.to(k2.dtype), mask=ok)


def rerotate_triton(
    keys: torch.Tensor, start: int, delta: torch.Tensor, inv_freq: torch.Tensor
) -> None:
    """Triton version of `rerotate_reference`: same contract."""
    assert HAVE_TRITON, "triton is not installed (pip install 'thread-runtime[triton]')"
    assert keys.dim() == 4 and keys.stride(-1) == 1, f"{keys.shape=} {keys.stride()=}"
    batch, num_heads, _, head_dim = keys.shape
    num_rows, block_s = delta.numel(), 32
    if num_rows:
        grid = (batch * num_heads, triton.cdiv(num_rows, block_s))
        _rerotate_kernel[grid](
            keys,
            delta.to(keys.device, torch.float32).contiguous(),
            inv_freq.to(keys.device, torch.float32).contiguous(),
            num_rows,
            start,
            num_heads,
            keys.stride(0),
            keys.stride(1),
            keys.stride(2),
            HALF=head_dim // 2,
            BLOCK_S=block_s,
            BLOCK_HALF=triton.next_power_of_2(head_dim // 2),
        )
