"""NC-SSD as one ``torch.library`` custom op, ``vssd_mm::nc_ssd``, the only way in: eager calls,
``torch.compile``, ``torch.export`` and the jit trace of the FLOP counter all run this node (and
``vssd_mm::nc_ssd_backward`` for its gradients) instead of Triton launches or einsums that graphs
cannot follow.

The forward returns ``y`` and the global state ``KV`` (batch, heads, N, P), float32 (float64 for
float64 inputs), which the backward reads instead of recomputing. Each direction asks
``dispatch.choose`` once: the Triton kernels for CUDA tensors, the reference otherwise, with
``dispatch.kernels_or_reference``'s fallback. ``DECOMPOSITIONS`` maps the op to the reference's
standard ops for users of ``torch.export`` (``ExportedProgram.run_decompositions``); under
``torch.onnx.export`` the reference's ops are traced in its place (``nc_ssd_node``).

B and C are (batch, L, G, N); w and D any float dtype (the kernels read them as float32). Under
``torch.autocast`` the inputs stay as given and both bodies run outside autocast
(``precision.autocast_off``): the same dtypes as the kernels and as the fake registration.
"""
from functools import partial
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..precision import autocast_off
from . import dispatch
from .reference import nc_ssd_reference_apply, nc_ssd_reference_backward, nc_ssd_reference_state


def _float32(t: Optional[Tensor]) -> Optional[Tensor]:
    # the kernels read w and D as float32: one compiled variant per dtype of x
    return None if t is None else t.float()


def _reference_forward(x, w, B, C, D) -> Tuple[Tensor, Tensor]:
    kv = nc_ssd_reference_state(x, w, B)
    return nc_ssd_reference_apply(C, kv, x, D), kv


@torch.library.custom_op('vssd_mm::nc_ssd', mutates_args=())
def nc_ssd_op(x: Tensor, w: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
              backend: str) -> Tuple[Tensor, Tensor]:
    with autocast_off(x.device):
        return _forward(x, w, B, C, D, backend)


def _forward(x, w, B, C, D, backend) -> Tuple[Tensor, Tensor]:
    use_kernels, strict = dispatch.choose(x, backend)
    reference = partial(_reference_forward, x, w, B, C, D)
    if not use_kernels:
        y, kv = reference()
    else:
        from .kernel_steps import kernel_forward
        y, kv = dispatch.kernels_or_reference(
            lambda: kernel_forward(x, _float32(w), B, C, _float32(D)), reference, x.device,
            strict)
    return y.contiguous(), kv.contiguous()  # the strides the fake declares


def _state_like(x: Tensor, B: Tensor) -> Tensor:
    acc = torch.promote_types(x.dtype, torch.float32)
    return x.new_empty((x.shape[0], x.shape[2], B.shape[3], x.shape[3]), dtype=acc)


@nc_ssd_op.register_fake
def _(x, w, B, C, D, backend):
    return torch.empty_like(x, memory_format=torch.contiguous_format), _state_like(x, B)


@torch.library.custom_op('vssd_mm::nc_ssd_backward', mutates_args=())
def nc_ssd_backward_op(dy: Tensor, x: Tensor, w: Tensor, B: Tensor, C: Tensor,
                       D: Optional[Tensor], kv: Tensor, backend: str
                       ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    with autocast_off(x.device):
        return _backward_grads(dy, x, w, B, C, D, kv, backend)


def _backward_grads(dy, x, w, B, C, D, kv, backend) -> Tuple[Tensor, ...]:
    dy = dy.contiguous()
    use_kernels, strict = dispatch.choose(x, backend)
    reference = partial(nc_ssd_reference_backward, x, w, B, C, D, dy, kv)
    if not use_kernels:
        dx, dw, dB, dC, dD = reference()
    else:
        def kernels():
            from .kernel_steps import kernel_backward
            dx, dw, dB, dC, dD = kernel_backward(x, _float32(w), B, C, _float32(D),
                                                 kv.float(), dy)
            return dx, dw.to(w.dtype), dB, dC, None if D is None else dD.to(D.dtype)
        dx, dw, dB, dC, dD = dispatch.kernels_or_reference(kernels, reference, x.device, strict)
    if dD is None:  # an op returns tensors only: zeros stand in, the autograd formula drops them
        dD = x.new_zeros(x.shape[2], dtype=w.dtype)
    return (dx.contiguous(), dw.contiguous(), dB.contiguous(), dC.contiguous(),
            dD.contiguous())


@nc_ssd_backward_op.register_fake
def _(dy, x, w, B, C, D, kv, backend):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(w, memory_format=torch.contiguous_format),
            torch.empty_like(B, memory_format=torch.contiguous_format),
            torch.empty_like(C, memory_format=torch.contiguous_format),
            x.new_empty(x.shape[2], dtype=w.dtype if D is None else D.dtype))


def _setup_context(ctx, inputs, output):
    x, w, B, C, D, backend = inputs
    _, kv = output
    ctx.save_for_backward(x, w, B, C, D, kv)
    ctx.backend = backend
    ctx.has_d = D is not None


def _backward(ctx, dy, _dkv):
    x, w, B, C, D, kv = ctx.saved_tensors
    dx, dw, dB, dC, dD = nc_ssd_backward_op(dy, x, w, B, C, D, kv, ctx.backend)
    return dx, dw, dB, dC, (dD if ctx.has_d else None), None


nc_ssd_op.register_autograd(_backward, setup_context=_setup_context)


def _reference(x, w, B, C, D=None, backend='auto'):
    return _reference_forward(x, w, B, C, D)


# the op in standard ops (einsum, mul, add): ExportedProgram.run_decompositions(DECOMPOSITIONS)
DECOMPOSITIONS = {torch.ops.vssd_mm.nc_ssd.default: _reference}


def nc_ssd_node(x: Tensor, w: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                backend: str) -> Tensor:
    """y of the op for checked inputs (B, C 4-D). Under ``torch.onnx.export`` (either exporter;
    ONNX has no NC-SSD) the exporter traces the reference's standard ops instead, so a user's own
    ``torch.onnx.export(model, ..., dynamo=True)`` needs no translation table."""
    if torch.onnx.is_in_onnx_export():
        return _reference_forward(x, w, B, C, D)[0]
    return torch.ops.vssd_mm.nc_ssd(x, w, B, C, D, backend)[0]
