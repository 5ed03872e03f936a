"""NC-SSD as a ``torch.library`` custom op, for graphs: ``torch.compile``, ``torch.export`` and
the jit trace of the FLOP counter see one node ``vssd_mm::nc_ssd`` (and ``vssd_mm::nc_ssd_backward``
for its gradients) instead of Triton launches or einsums they cannot follow.

The op runs what eager ``nc_ssd`` runs (the Triton kernels for CUDA tensors, the reference
otherwise, the same fallback rules); ``DECOMPOSITIONS`` maps it to the reference's standard ops,
for exporters without a Triton runtime (ONNX: ``ExportedProgram.run_decompositions``).

B and C are (batch, L, G, N); w and D any float dtype (the kernels read them as float32).
"""
from functools import partial
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import dispatch
from .reference import nc_ssd_reference, nc_ssd_reference_backward


def run(x: Tensor, w: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
        backend: str) -> Tensor:
    """y of NC-SSD by the backend ``dispatch.choose`` picks (eager; autograd through the
    kernels' function)."""
    use_kernels, strict = dispatch.choose(x, backend)
    reference = partial(nc_ssd_reference, x, w, B, C, D)
    if not use_kernels:
        return reference()
    from .function import NCSSDFunction
    # the kernels read w and D as float32 (one compiled variant per x dtype); autograd casts
    # their gradients back
    return dispatch.kernels_or_reference(
        lambda: NCSSDFunction.apply(x, w.float(), B, C, None if D is None else D.float(), strict),
        reference, x.device, strict)


def run_backward(dy: Tensor, x: Tensor, w: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                 backend: str) -> Tuple[Optional[Tensor], ...]:
    """(dx, dw, dB, dC, dD) by the kernels (recomputing the forward's state) or the reference."""
    use_kernels, strict = dispatch.choose(x, backend)
    reference = partial(nc_ssd_reference_backward, x, w, B, C, D, dy)
    if not use_kernels:
        return reference()

    def kernels():
        from .function import kernel_backward, kv_reduce
        w32, D32 = w.float(), None if D is None else D.float()
        kv = kv_reduce(B, x, w32, heads=x.shape[2])
        dx, dw, dB, dC, dD = kernel_backward(x, w32, B, C, D32, kv, dy)
        return dx, dw.to(w.dtype), dB, dC, None if D is None else dD.to(D.dtype)
    return dispatch.kernels_or_reference(kernels, reference, x.device, strict)


@torch.library.custom_op('vssd_mm::nc_ssd', mutates_args=())
def nc_ssd_op(x: Tensor, w: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
              backend: str) -> Tensor:
    with torch.no_grad():
        return run(x, w, B, C, D, backend).contiguous()


@nc_ssd_op.register_fake
def _(x, w, B, C, D, backend):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op('vssd_mm::nc_ssd_backward', mutates_args=())
def nc_ssd_backward_op(dy: Tensor, x: Tensor, w: Tensor, B: Tensor, C: Tensor,
                       D: Optional[Tensor], backend: str) -> Tuple[Tensor, Tensor, Tensor, Tensor,
                                                                   Tensor]:
    dx, dw, dB, dC, dD = run_backward(dy.contiguous(), x, w, B, C, D, backend)
    if dD is None:  # an op returns tensors only: zeros stand in, the autograd formula drops them
        dD = x.new_zeros(x.shape[2], dtype=w.dtype)
    return (dx.contiguous(), dw.contiguous(), dB.contiguous(), dC.contiguous(),
            dD.contiguous())


@nc_ssd_backward_op.register_fake
def _(dy, x, w, B, C, D, backend):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(w, memory_format=torch.contiguous_format),
            torch.empty_like(B, memory_format=torch.contiguous_format),
            torch.empty_like(C, memory_format=torch.contiguous_format),
            x.new_empty(x.shape[2], dtype=w.dtype if D is None else D.dtype))


def _setup_context(ctx, inputs, output):
    x, w, B, C, D, backend = inputs
    ctx.save_for_backward(x, w, B, C, D)
    ctx.backend = backend
    ctx.has_d = D is not None


def _backward(ctx, dy):
    x, w, B, C, D = ctx.saved_tensors
    dx, dw, dB, dC, dD = nc_ssd_backward_op(dy, x, w, B, C, D, ctx.backend)
    return dx, dw, dB, dC, (dD if ctx.has_d else None), None


nc_ssd_op.register_autograd(_backward, setup_context=_setup_context)


def _reference(x, w, B, C, D=None, backend='auto'):
    return nc_ssd_reference(x, w, B, C, D)


# the op in standard ops (einsum, mul, add): ExportedProgram.run_decompositions(DECOMPOSITIONS)
DECOMPOSITIONS = {torch.ops.vssd_mm.nc_ssd.default: _reference}
