"""How the NC-SSD kernels are launched: tile sizes, warps, pipeline stages, grids and argument
lists.

The one place both the kernel steps (kernel_steps.py), which run the launches, and the
ahead-of-time check (compile_check.py), which compiles the very same launches for GPU targets
without a GPU, take them from, so the check cannot drift from what runs.

The launch settings were timed on an H100 (``benchmarks/tune_kernels.py``) among those the
compiler's own report passes (``benchmarks/check_kernels.py``: no register spills, at least two
resident blocks or eight warps per SM on sm_80/86/89/90).

``unserved`` says, from the launches themselves, which inputs the kernels cannot serve (offsets
past int32, grids past the hardware's limits, tiles larger than the settings were measured for);
``device_guard`` is what the launches run under.
"""
import contextlib
from dataclasses import dataclass
from typing import ContextManager, Dict, List, Optional, Sequence, Tuple

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
    # one setting per class fits every tile up to the measured 64 x 64 (compile_check.py);
    # larger d_state / headdim are not launched (unserved: 'tile')
    del dstate, headdim
    return SETTINGS[kernel][operand_class(dtype)]


def block(size: int) -> int:
    """The padded tile extent of a dimension: tl.dot needs a power of two >= 16."""
    return max(16, triton.next_power_of_2(size))


def tf32_allowed() -> bool:
    """Whether torch's switch lets float32 CUDA matmuls use TF32.

    Read through ``torch.backends.cuda.matmul.fp32_precision``, whose getter resolves 'none' to
    the parent setting (``torch.backends.fp32_precision``) and reflects the legacy setters
    (``matmul.allow_tf32 = ...``, ``torch.set_float32_matmul_precision``), which write it too.
    The legacy getter ``allow_tf32`` raises once the new API has set a value the legacy state does
    not match, so it is read only on a torch without the new API."""
    matmul = torch.backends.cuda.matmul
    try:
        precision = matmul.fp32_precision
    except AttributeError:  # torch before the fp32_precision API
        return bool(matmul.allow_tf32)
    return precision == 'tf32'


def dot_precision(dtype: torch.dtype) -> str:
    """The dots' input precision. Tiles are upcast to fp32 on load; for half inputs TF32 keeps
    their 10 (7) mantissa bits (only the products w x are rounded to TF32). fp32 inputs follow
    torch's TF32 switch (``tf32_allowed``), as torch.matmul would: TF32 when allowed, else 3xTF32
    (hi/lo split, fp32 accuracy on tensor cores, where 'ieee' FMA dots spill registers at every
    useful tile size)."""
    if dtype == torch.float32 and not tf32_allowed():
        return 'tf32x3'
    return 'tf32'


def device_guard(device: torch.device) -> ContextManager:
    """What the launches for tensors on ``device`` run under. Triton launches on the current
    stream of the current CUDA device; the guard makes the tensors' device current, so they run
    on that device and its current stream (a model on cuda:1 while the current device is 0 works).
    A null context for the interpreter's CPU tensors."""
    return torch.cuda.device(device) if device.type == 'cuda' else contextlib.nullcontext()


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


def _skip_weights(D: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    # the kernels read D[h] at D + h: a strided or expanded D (a view) becomes its own (heads,)
    return None if D is None else D.to(torch.float32).contiguous()


def apply_launch(C: torch.Tensor, kv: torch.Tensor, x: torch.Tensor,
                 D: Optional[torch.Tensor]) -> Tuple[Launch, torch.Tensor]:
    """The launch computing y = C KV_h + D_h x, and y: (batch, L, heads, P) like x, contiguous.

    Args:
        C: (batch, L, G, N); kv: (batch, heads, N, P) float32; x: (batch, L, heads, P);
        D: (heads,) or None, any strides (read as a contiguous float32 copy where it is not one).
    """
    batch, length, heads, headdim = x.shape
    groups, dstate = C.shape[2], C.shape[3]
    D = _skip_weights(D)
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
    D = _skip_weights(D)
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


# Element offsets in the kernels are int32 sums of int32 products (program ids times strides):
# the largest one must stay below 2^31, or addresses wrap.
MAX_OFFSET = 2**31 - 1
# CUDA's limits on a grid's dimensions x, y, z (programs)
MAX_GRID = (2**31 - 1, 65535, 65535)
# The padded N / P tile the SETTINGS were measured at (VSSD's d_state and headdim of 48 or 64):
# smaller tiles need fewer registers; larger ones might spill or exceed shared memory untried.
TUNED_TILE = 64


def largest_offset(sizes: Sequence[int], strides: Sequence[int]) -> int:
    """The largest element offset into a tensor of ``sizes`` and ``strides``: sum of
    (size - 1) * stride over its dimensions, 0 for an empty tensor."""
    if any(size == 0 for size in sizes):
        return 0
    return sum((size - 1) * abs(stride) for size, stride in zip(sizes, strides))


def unserved(launches: Sequence[Launch]) -> Optional[Tuple[str, str]]:
    """Why the kernels cannot run ``launches`` as measured and correct, as (kind, reason), or
    None when they can. Kinds: 'tile' (d_state or headdim past 64, a tile the settings were not
    measured at), 'offset' (an operand or output whose largest element offset reaches 2^31) and
    'grid' (a grid past CUDA's limits, e.g. bwd_bc's L-tiles at ~1M tokens). Read off the
    launches themselves: their constexprs, every tensor argument and their grids."""
    for launch in launches:
        tiles = launch.constexprs['BLOCK_N'], launch.constexprs['BLOCK_P']
        if max(tiles) > TUNED_TILE:
            return 'tile', (f'd_state and headdim pad to {tiles[0]} x {tiles[1]} tiles; the '
                            f'launch settings were measured for d_state and headdim up to '
                            f'{TUNED_TILE}')
    for launch in launches:
        for arg in launch.args:
            # a tensor of at most 2^31 elements in storage cannot reach offset 2^31 (fast path)
            if isinstance(arg, torch.Tensor) and arg.untyped_storage().nbytes() > (
                    MAX_OFFSET + 1) * arg.element_size():
                offset = largest_offset(arg.shape, arg.stride())
                if offset > MAX_OFFSET:
                    return 'offset', (f'{launch.name} addresses an operand of shape '
                                      f'{tuple(arg.shape)} and strides {arg.stride()} up to '
                                      f'element {offset:,}, past the kernels\' int32 offsets '
                                      f'(below 2^31)')
        for dim, (size, limit) in enumerate(zip(launch.grid, MAX_GRID)):
            if size > limit:
                return 'grid', (f'{launch.name}\'s grid {launch.grid} passes CUDA\'s limit of '
                                f'{limit:,} programs in dimension {dim}')
    return None
