"""Measured launch settings: every candidate tile / warps / stages of each kernel, timed on the
GPU at VSSD-T's largest shapes, with the compiler's register and spill counts and the bandwidth
achieved. ``benchmarks/tune_kernels.py`` prints the table; the winners go into launch.SETTINGS by
hand (a fixed table: deterministic, and nothing to tune at a user's first call).
"""
import contextlib
import itertools
from typing import Dict, Iterator, List, Tuple

import torch

from vssd_mm.ops.nc_ssd import launch as launch_module
from vssd_mm.ops.nc_ssd.launch import (LaunchSettings, apply_launch, backward_launches,
                                       kv_reduce_launch)

# (name, batch, tokens L, heads): VSSD-T stage 0 at a 1344 x 800 detection input (batch 2 per
# GPU) and at 224 x 224 classification (batch 128 per GPU); N = P = 64
TUNING_SHAPES = [('det_stage1', 2, 336 * 200, 2), ('cls_stage1', 128, 56 * 56, 2)]
HEADDIM = DSTATE = 64
KERNELS = ('kv_reduce', 'apply', 'bwd_x', 'bwd_bc')
# operand class -> the input dtype and TF32 switch that select it (launch.operand_class)
CLASS_INPUTS = {'half': (torch.float16, False), 'tf32': (torch.float32, True),
                'tf32x3': (torch.float32, False)}


def candidates(operand_class: str) -> List[LaunchSettings]:
    """The settings tried: fp32 'tf32x3' tiles need three dots' registers, so smaller tiles."""
    tiles = (16, 32, 64) if operand_class == 'tf32x3' else (32, 64, 128)
    stages = (2, 3) if operand_class == 'half' else (2,)
    return [LaunchSettings(t, num_warps=w, num_stages=s)
            for t, w, s in itertools.product(tiles, (4, 8), stages)]


@contextlib.contextmanager
def trying(kernel: str, operand_class: str, settings: LaunchSettings) -> Iterator[None]:
    """Launch ``kernel`` with ``settings`` for this operand class while inside."""
    table = launch_module.SETTINGS[kernel]
    saved = table[operand_class]
    table[operand_class] = settings
    try:
        yield
    finally:
        table[operand_class] = saved


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """Within: torch's TF32 switch for CUDA matmuls set to ``enabled`` (through its current API
    where torch has it: the legacy ``allow_tf32`` read raises once that API was used)."""
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, 'fp32_precision'):  # torch before the fp32_precision API
        saved = matmul.allow_tf32
        matmul.allow_tf32 = enabled
        try:
            yield
        finally:
            matmul.allow_tf32 = saved
        return
    saved = matmul.fp32_precision
    matmul.fp32_precision = 'tf32' if enabled else 'ieee'
    try:
        yield
    finally:
        matmul.fp32_precision = saved


def operands(batch: int, tokens: int, heads: int, dtype: torch.dtype,
             device: str = 'cuda') -> Dict[str, torch.Tensor]:
    """Forward inputs, the upstream gradient and the two states, as the autograd function has
    them (x, B, C, dy in ``dtype``; w, D, kv, dkv float32)."""
    g = torch.Generator(device=device).manual_seed(0)

    def randn(*size, dtype=dtype):
        return (torch.randn(*size, generator=g, device=device) * 0.5).to(dtype)
    return dict(x=randn(batch, tokens, heads, HEADDIM), dy=randn(batch, tokens, heads, HEADDIM),
                w=torch.rand(batch, tokens, heads, generator=g, device=device) * 0.1,
                B=randn(batch, tokens, 1, DSTATE), C=randn(batch, tokens, 1, DSTATE),
                D=torch.ones(heads, device=device),
                kv=randn(batch, heads, DSTATE, HEADDIM, dtype=torch.float32),
                dkv=randn(batch, heads, DSTATE, HEADDIM, dtype=torch.float32))


def build(kernel: str, t: Dict[str, torch.Tensor]) -> list:
    """The launches of ``kernel`` in one forward + backward (bwd_bc runs twice: dB and dC)."""
    if kernel == 'kv_reduce':  # the forward's KV; the backward's dKV is the same launch
        return [kv_reduce_launch(t['B'], t['x'], t['w'], t['x'].shape[2])[0]]
    if kernel == 'apply':
        return [apply_launch(t['C'], t['kv'], t['x'], t['D'])[0]]
    launches, _ = backward_launches(t['x'], t['w'], t['B'], t['C'], t['D'], t['dy'], t['kv'],
                                    t['dkv'])
    return [la for la in launches if la.name == kernel]


def bytes_moved(launches) -> int:
    """Bytes of every distinct tensor the launches read or write, each counted once: the
    least traffic the launches can make."""
    seen = {}
    for la in launches:
        for arg in la.args:
            if isinstance(arg, torch.Tensor):
                seen[arg.data_ptr(), arg.numel()] = arg.numel() * arg.element_size()
    return sum(seen.values())


def compiled_stats(la) -> Tuple[int, int]:
    """(registers per thread, spilled registers) of the launch's compiled kernel."""
    kernel = la.fn[la.grid](*la.args, **la.options)  # Triton returns the compiled kernel
    return getattr(kernel, 'n_regs', -1), getattr(kernel, 'n_spills', -1)


def measure(kernel: str, operand_class: str, shapes=TUNING_SHAPES,
            device: str = 'cuda') -> List[dict]:
    """One row per (candidate, shape): ms, GB/s, registers and spills, on the current GPU."""
    from triton.testing import do_bench
    dtype, allow_tf32 = CLASS_INPUTS[operand_class]
    rows = []
    with tf32(allow_tf32):
        for name, batch, tokens, heads in shapes:
            tensors = operands(batch, tokens, heads, dtype, device)
            for settings in candidates(operand_class):
                with trying(kernel, operand_class, settings):
                    launches = build(kernel, tensors)
                try:
                    regs, spills = compiled_stats(launches[0])
                    ms = do_bench(lambda: [la() for la in launches], warmup=5, rep=25)
                except Exception as exc:  # out of resources for this candidate: a row, not a stop
                    rows.append(dict(kernel=kernel, operand_class=operand_class, shape=name,
                                     settings=settings, error=str(exc).splitlines()[0][:80]))
                    continue
                rows.append(dict(kernel=kernel, operand_class=operand_class, shape=name,
                                 settings=settings, ms=ms, regs=regs, spills=spills,
                                 gbps=bytes_moved(launches) / ms / 1e6))
    return rows


def best(rows: List[dict]) -> Dict[Tuple[str, str], LaunchSettings]:
    """Per (kernel, operand class): the spill-free candidate with the least total time over the
    shapes (a candidate that failed on any shape is out)."""
    totals: Dict[tuple, float] = {}
    out_of_race = {(r['kernel'], r['operand_class'], r['settings']) for r in rows
                   if 'error' in r or r['spills'] > 0}
    for r in rows:
        key = (r['kernel'], r['operand_class'], r['settings'])
        if key not in out_of_race:
            totals[key] = totals.get(key, 0.) + r['ms']
    winners: Dict[Tuple[str, str], Tuple[float, LaunchSettings]] = {}
    for (kernel, cls, settings), total in totals.items():
        if (kernel, cls) not in winners or total < winners[kernel, cls][0]:
            winners[kernel, cls] = (total, settings)
    return {key: settings for key, (_, settings) in winners.items()}
