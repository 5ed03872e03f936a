"""FLOPs of VSSD models with mmengine's (fvcore-style) analyzer, counting the NC-SSD op.

Convention (fvcore's, which the paper used): one FLOP = one multiply-add of a matmul, linear,
convolution or einsum (plus norms and interpolation as fvcore counts them); element-wise
products are not counted.

The jit trace the analyzer reads sees the NC-SSD op as one node, the custom op ``vssd_mm::nc_ssd``
(``vssd_mm/ops/nc_ssd/op.py``; ``nc_ssd`` emits it in every trace), which our handle counts:

- exact: the two contractions of every head, ``2 * B * L * H * P * N``;
- ``published``: what the release's fvcore count saw. Its K/Q operands carry a broadcast head axis
  of size 1 and fvcore's matmul rule ignores it, so each contraction counted ``B * L * P * N``
  (without the head factor H): micro/tiny/small/base 2.3 / 4.5 / 7.4 / 16.1 G at 224².

The last stage's attention runs through ``scaled_dot_product_attention``, which the analyzer does
not know; it is counted like the release's two einsums: ``B * h * L * S * (d + d_v)``.
"""
from collections import Counter
from typing import Dict, Tuple

import torch
from torch import nn

from .. import ops  # noqa: F401  (registers vssd_mm::nc_ssd, the node the handle counts)

MODES = ('exact', 'published')


def nc_ssd_flops(batch: int, tokens: int, heads: int, headdim: int, d_state: int,
                 mode: str = 'exact') -> int:
    """Multiply-adds of one NC-SSD call: KV = sum_l B_l^T (w x)_l and y = C KV, all heads.

    Args:
        mode: 'exact' (every head) or 'published' (the release's count, one head's worth).
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    per_head = 2 * batch * tokens * headdim * d_state
    return per_head * heads if mode == 'exact' else per_head


def _shape(value) -> Tuple[int, ...]:
    return tuple(value.type().sizes())


def _nc_ssd_handle(mode: str):
    def handle(inputs, outputs) -> Counter:
        batch, tokens, heads, headdim = _shape(inputs[0])
        d_state = _shape(inputs[2])[-1]
        return Counter({'nc_ssd': nc_ssd_flops(batch, tokens, heads, headdim, d_state, mode)})
    return handle


def _sdpa_handle(inputs, outputs) -> Counter:
    *lead, q_len, d = _shape(inputs[0])
    s_len, dv = _shape(inputs[2])[-2:]
    n = 1
    for v in lead:
        n *= v
    return Counter({'attention': n * q_len * s_len * (d + dv)})


def count_flops(model: nn.Module, inputs, mode: str = 'exact') -> Tuple[int, Dict[str, int]]:
    """Total FLOPs (multiply-adds) of ``model(*inputs)`` and the count per module name.

    Args:
        model: any module whose forward takes ``inputs`` (tensors).
        inputs: a tensor or a tuple of tensors.
        mode: how the NC-SSD op is counted, 'exact' or 'published' (see the module docstring).

    Returns:
        (total, {module name: FLOPs}) - names as in ``model.named_modules()``, '' for the total.
    """
    from mmengine.analysis import FlopAnalyzer
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, inputs)
            analyzer.set_op_handle('vssd_mm::nc_ssd', _nc_ssd_handle(mode),
                                   'aten::scaled_dot_product_attention', _sdpa_handle)
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_module = dict(analyzer.by_module())
            return analyzer.total(), by_module
    finally:
        model.train(was_training)
