"""Timing of NC-SSD implementations at the shapes VSSD uses (torch + triton only).

Compared side by side in one run:
- ``official``: the release's formulation, per-head matmuls on permuted, contiguous copies
  (``B^T (a V)`` with V as (batch, heads, L, P)), in the input dtype;
- ``reference``: ``vssd_mm.ops.nc_ssd_reference`` (einsum, fp32 accumulation);
- ``triton``: the fused kernels (CUDA only).
"""
import time
from typing import Callable, Dict, List, Optional

import torch

from vssd_mm.ops.nc_ssd import nc_ssd, nc_ssd_reference

# VSSD-T (N = P = 64, heads 2/4/8 in stages 0-2) at the paper's input sizes:
# (task, input, batch per GPU, stage, tokens L, heads)
VSSD_T_SHAPES = [
    ('cls', '224x224', 128, 1, 56 * 56, 2), ('cls', '224x224', 128, 2, 28 * 28, 4),
    ('cls', '224x224', 128, 3, 14 * 14, 8),
    ('det', '1344x800', 2, 1, 336 * 200, 2), ('det', '1344x800', 2, 2, 168 * 100, 4),
    ('det', '1344x800', 2, 3, 84 * 50, 8),
    ('seg', '512x512', 2, 1, 128 * 128, 2), ('seg', '512x512', 2, 2, 64 * 64, 4),
    ('seg', '512x512', 2, 3, 32 * 32, 8),
]
HEADDIM = DSTATE = 64
# HBM peak (GB/s) by device-name substring; override with --peak-gbps
PEAK_GBPS = {'H200': 4800., 'H100 SXM': 3350., 'H100 80GB HBM3': 3350., 'H100 PCIe': 2000.,
             'H100': 3350., 'A100-SXM4-80GB': 2039., 'A100': 1555.}


def official_formulation(x, w, B, C, D):
    """The release's computation order and layout (heads-first copies, broadcast K/Q)."""
    batch, tokens, heads, headdim = x.shape
    V = x.permute(0, 2, 1, 3)                                    # (b, H, L, P)
    a = w.permute(0, 2, 1).unsqueeze(-1).to(x.dtype)             # (b, H, L, 1)
    K = B.reshape(batch, 1, tokens, -1)
    Q = C.reshape(batch, 1, tokens, -1)
    kv = K.transpose(-1, -2) @ (V * a)                          # (b, H, N, P)
    y = Q @ kv + V * D.view(1, -1, 1, 1).to(x.dtype)
    return y.permute(0, 2, 1, 3).contiguous()


def make_inputs(batch, tokens, heads, dtype, device, requires_grad=False):
    g = torch.Generator(device=device).manual_seed(0)

    def rand(*shape, scale=1.):
        return (torch.randn(*shape, generator=g, device=device) * scale).to(dtype)
    x = rand(batch, tokens, heads, HEADDIM, scale=.5)
    w = torch.rand(batch, tokens, heads, generator=g, device=device) * .1
    B, C = rand(batch, tokens, DSTATE, scale=.5), rand(batch, tokens, DSTATE, scale=.5)
    D = torch.ones(heads, device=device)
    tensors = [x, w, B, C, D]
    if requires_grad:
        for t in tensors:
            t.requires_grad_()
    return tensors


def io_bytes(batch, tokens, heads, dtype) -> int:
    """Bytes a forward must move at least: read x, w, B, C once, write y."""
    item = torch.finfo(dtype).bits // 8
    return (2 * batch * tokens * heads * HEADDIM * item + batch * tokens * heads * 4
            + 2 * batch * tokens * DSTATE * item)


def _time(fn: Callable[[], object], device: str, repeats: int) -> float:
    fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def measure(impl: Callable, inputs: List[torch.Tensor], device: str, repeats: int,
            backward: bool) -> Dict[str, float]:
    """Mean seconds of forward (or forward + backward) and peak memory (bytes, CUDA only)."""
    def step():
        y = impl(*inputs)
        if backward:
            y.backward(torch.ones_like(y))
    if device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    seconds = _time(step, device, repeats)
    peak = torch.cuda.max_memory_allocated() - base if device == 'cuda' else float('nan')
    return dict(seconds=seconds, peak_bytes=peak)


def implementations(device: str) -> Dict[str, Callable]:
    impls = {'official': official_formulation, 'reference': nc_ssd_reference}
    if device == 'cuda':
        impls['triton'] = lambda *t: nc_ssd(*t, backend='triton')
    return impls


def run(dtype=torch.float16, device: Optional[str] = None, repeats: int = 10,
        shapes=VSSD_T_SHAPES, scale_batch: float = 1.) -> List[dict]:
    """One row per (shape, implementation, pass) with seconds, peak memory and GB/s."""
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    rows = []
    for task, size, batch, stage, tokens, heads in shapes:
        batch = max(1, int(batch * scale_batch))
        for name, impl in implementations(device).items():
            for backward in (False, True):
                inputs = make_inputs(batch, tokens, heads, dtype, device, requires_grad=backward)
                result = measure(impl, inputs, device, repeats, backward)
                rows.append(dict(task=task, input=size, batch=batch, stage=stage, L=tokens,
                                 heads=heads, impl=name, pass_='fwd+bwd' if backward else 'fwd',
                                 gbps=io_bytes(batch, tokens, heads, dtype) / result['seconds']
                                 / 1e9, **result))
    return rows
