"""How the NC-SSD kernels are launched: tile sizes, warps, pipeline stages, grids and argument
lists.

The one place both the kernel steps (kernel_steps.py), which run the launches, and the
ahead-of-time check (compile_check.py), which compiles the very same launches for GPU targets
without a GPU, take them from, so the check cannot drift from what runs.

The launch settings were timed on an H100 (``benchmarks/tune_kernels.py``) among those the
compiler's own report passes (``benchmarks/check_kernels.py``: no register spills, at least two
resident blocks or eight warps per SM on sm_80/86/89/90).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import triton

from . import kernels


@dataclass(frozen=True)
class LaunchSettings:
    """Compile-time launch parameters of one kernel: the L-tile and Triton's num_warps and
    num_stages."""
    block_l: int
    num_warps: int
    num_stages: int


# kernel -> operand class -> settings, for VSSD's (N, P) of 48 or 64 on every architecture. The
# classes differ in what a dot costs in registers: 'half' (fp16/bf16 tiles upcast, TF32 dots),
# 'tf32' (fp32 with torch's TF32 switch on) and 'tf32x3' (fp32 without TF32: three TF32 dots
# that keep fp32 accuracy). Measured on an H100 (benchmarks/tune_kernels.py, VSSD-T stage 0 at
# detection and classification sizes): the fastest candidate, unless benchmarks/check_kernels.py
# showed it spilling on sm_80 (3xTF32 at 64-token tiles) or leaving one block per SM on sm_86/89
# (fp16 bwd_bc at 128); then the fastest that passes. docs/benchmarks.md has both tables.
SETTINGS: Dict[str, Dict[str, LaunchSettings]] = {
    'kv_reduce': dict(half=LaunchSettings(64, num_warps=4, num_stages=2),
                      tf32=LaunchSettings(32, num_warps=4, num_stages=2),
                      tf32x3=LaunchSettings(32, num_warps=4, num_stages=2)),
    'apply': dict(half=LaunchSettings(128, num_warps=4, num_stages=2),
                  tf32=LaunchSettings(64, num_warps=4, num_stages=2),
                  tf32x3=LaunchSettings(32, num_warps=4, num_stages=2)),
    'bwd_x': dict(half=LaunchSettings(32, num_warps=4, num_stages=2),
                  tf32=LaunchSettings(32, num_warps=4, num_stages=2),
                  tf32x3=LaunchSettings(64, num_warps=4, num_stages=2)),
    'bwd_bc': dict(half=LaunchSettings(64, num_warps=4, num_stages=3),
                   tf32=LaunchSettings(64, num_warps=4, num_stages=2),
                   tf32x3=LaunchSettings(16, num_warps=4, num_stages=2)),
}


def operand_class(dtype: torch.dtype) -> str:
    """'half', 'tf32' or 'tf32x3': the key of SETTINGS' inner tables for inputs of ``dtype``."""
    return 'half' if dtype in (torch.float16, torch.bfloat16) else dot_precision(dtype)


def launch_settings(kernel: str, dstate: int, headdim: int, dtype: torch.dtype) -> LaunchSettings:
    """The settings ``kernel`` runs with for (dstate N, headdim P) inputs of ``dtype``."""
    del dstate, headdim  # one setting per class fits all of VSSD's shapes (compile_check.py)
    return SETTINGS[kernel][operand_class(dtype)]


def block(size: int) -> int:
    """The padded tile extent of a dimension: tl.dot needs a power of two >= 16."""
    return max(16, triton.next_power_of_2(size))


def dot_precision(dtype: torch.dtype) -> str:
    """The dots' input precision. Tiles are upcast to fp32 on load; for half inputs TF32 keeps
    their 10 (7) mantissa bits (only the products w x are rounded to TF32). fp32 inputs follow torch's TF32 switch, as torch.matmul
    would: TF32 when allowed, else 3xTF32 (hi/lo split, fp32 accuracy on tensor cores, where
    'ieee' FMA dots spill registers at every useful tile size)."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return 'tf32x3'
    return 'tf32'


def num_splits(batch_heads: int, tiles: int, device: torch.device) -> int:
    """How many programs share one (batch, head) reduction over L: enough to fill the GPU."""
    if device.type == 'cuda':
        target = 4 * torch.cuda.get_device_properties(device).multi_processor_count
    else:  # the interpreter (and the ahead-of-time check): two splits where possible
        target = 2 * batch_heads
    return max(1, min(tiles, triton.cdiv(target, batch_heads)))


@dataclass
class Launch:
    """One kernel launch, fully specified: ``launch()`` runs it."""
    name: str                      # key of SETTINGS
    grid: Tuple[int, ...]
    args: tuple                    # the kernel's runtime arguments, in order
    constexprs: Dict[str, object]  # flags and tile sizes
    settings: LaunchSettings

    @property
    def fn(self):
        """The ``@triton.jit`` kernel (kernels.py)."""
        return getattr(kernels, f'{self.name}_kernel')

    @property
    def options(self) -> Dict[str, object]:
        """Everything passed by keyword: constexprs plus num_warps / num_stages."""
        return dict(self.constexprs, num_warps=self.settings.num_warps,
                    num_stages=self.settings.num_stages)

    def __call__(self) -> None:
        self.fn[self.grid](*self.args, **self.options)


def kv_reduce_launch(keys: torch.Tensor, values: torch.Tensor, weights: Optional[torch.Tensor],
                     heads: int) -> Tuple[Launch, torch.Tensor]:
    """The launch computing split partials of ``sum_l keys_l^T (weights_{l,h} values_{l,h})``.

    Args:
        keys: (batch, L, G, N); values: (batch, L, heads, P); weights: (batch, L, heads) float32
            or None.
    Returns:
        the launch, and its output (batch, heads, splits, N, P) float32 (sum over splits = KV).
    """
    batch, length, groups, dstate = keys.shape
    headdim = values.shape[-1]
    settings = launch_settings('kv_reduce', dstate, headdim, keys.dtype)
    tiles = triton.cdiv(length, settings.block_l)
    splits = num_splits(batch * heads, tiles, keys.device)
    tiles_per_split = triton.cdiv(tiles, splits)
    splits = triton.cdiv(tiles, tiles_per_split)
    partial = torch.empty(batch, heads, splits, dstate, headdim, device=keys.device,
                          dtype=torch.float32)
    w_arg, w_strides = (weights, weights.stride()) if weights is not None else (values, (0, 0, 0))
    launch = Launch(
        'kv_reduce', (batch * heads, splits),
        (keys, values, w_arg, partial, length, heads, groups, dstate, headdim, tiles_per_split,
         *keys.stride(), *values.stride(), *w_strides, *partial.stride()),
        dict(HAS_W=weights is not None, BLOCK_L=settings.block_l, BLOCK_N=block(dstate),
             BLOCK_P=block(headdim), PRECISION=dot_precision(keys.dtype)),
        settings)
    return launch, partial


def apply_launch(C: torch.Tensor, kv: torch.Tensor, x: torch.Tensor,
                 D: Optional[torch.Tensor]) -> Tuple[Launch, torch.Tensor]:
    """The launch computing y = C KV_h + D_h x, and y: (batch, L, heads, P) like x, contiguous.

    Args:
        C: (batch, L, G, N); kv: (batch, heads, N, P) float32; x: (batch, L, heads, P);
        D: (heads,) float32 or None.
    """
    batch, length, heads, headdim = x.shape
    groups, dstate = C.shape[2], C.shape[3]
    settings = launch_settings('apply', dstate, headdim, x.dtype)
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    launch = Launch(
        'apply', (batch * heads, triton.cdiv(length, settings.block_l)),
        (C, kv, x, D if D is not None else x, y, length, heads, groups, dstate, headdim,
         *C.stride(), *kv.stride(), *x.stride(), *y.stride()),
        dict(HAS_D=D is not None, BLOCK_L=settings.block_l, BLOCK_N=block(dstate),
             BLOCK_P=block(headdim), PRECISION=dot_precision(x.dtype)),
        settings)
    return launch, y


def backward_launches(x, w, B, C, D, dy, kv, dkv) -> Tuple[List[Launch], Dict[str, torch.Tensor]]:
    """The launches computing dx, dw, dB, dC and the dD partials from KV and dKV (see kernels.py).

    Args: the forward's inputs (w and D float32), dy like x, kv and dkv (batch, heads, N, P)
    float32.
    Returns:
        the launches, and their outputs by name: dx, dw, dB, dC (shaped like x, w, B, C, contiguous)
        and dd_part (batch, heads, tiles) float32, whose sum over batch and tiles is dD.
    """
    batch, length, heads, headdim = x.shape
    groups, dstate = B.shape[2], B.shape[3]
    blocks = dict(BLOCK_N=block(dstate), BLOCK_P=block(headdim), PRECISION=dot_precision(x.dtype))
    out = {name: torch.empty_like(t, memory_format=torch.contiguous_format)
           for name, t in (('dx', x), ('dw', w), ('dB', B), ('dC', C))}

    settings = launch_settings('bwd_x', dstate, headdim, x.dtype)
    tiles = triton.cdiv(length, settings.block_l)
    out['dd_part'] = torch.empty(batch, heads, tiles, device=x.device, dtype=torch.float32)
    launches = [Launch(
        'bwd_x', (batch * heads, tiles),
        (x, w, B, D if D is not None else x, dy, dkv, out['dx'], out['dw'], out['dd_part'],
         length, heads, groups, dstate, headdim,
         *x.stride(), *w.stride(), *B.stride(), *dy.stride(), *dkv.stride(),
         *out['dx'].stride(), *out['dw'].stride(), *out['dd_part'].stride()),
        dict(HAS_D=D is not None, BLOCK_L=settings.block_l, **blocks), settings)]

    settings = launch_settings('bwd_bc', dstate, headdim, x.dtype)
    grid = (batch * groups, triton.cdiv(length, settings.block_l))
    for values, weights, state, grad in ((x, w, dkv, out['dB']), (dy, None, kv, out['dC'])):
        w_arg, w_strides = (weights, weights.stride()) if weights is not None else (values, (0,) * 3)
        launches.append(Launch(
            'bwd_bc', grid,
            (values, w_arg, state, grad, length, heads, groups, dstate, headdim,
             *values.stride(), *w_strides, *state.stride(), *grad.stride()),
            dict(HAS_W=weights is not None, BLOCK_L=settings.block_l, **blocks), settings))
    return launches, out
