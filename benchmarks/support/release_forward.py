"""The release's VSSD backbone forward, written from its layer-by-layer definition
(classification/models/mamba2.py and mamba_util.py) on a state dict with its key names, in its
layout: tokens (B, L, D) between layers, a transposed copy into (B, D, H, W) around every
convolution and back, NC-SSD as per-head matmuls on permuted copies (``official_formulation``)
and the raw-z gate.

It imports none of ``vssd_mm.models``' layers: tests/models/test_official_parity.py uses it as the
independent oracle that VSSD must equal, and ``deploy_speed`` as the speed baseline ("release")
that VSSD's eager forward is measured against with the same weights.
"""
import math
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from vssd_mm.variants import resolve_arch

from .nc_ssd_timing import official_formulation

StateDict = Dict[str, Tensor]


def _bn(sd: StateDict, p: str, x: Tensor, training: bool) -> Tensor:
    # training: batch statistics (the running ones are read, never updated)
    return F.batch_norm(x, None if training else sd[p + 'running_mean'],
                        None if training else sd[p + 'running_var'], sd[p + 'weight'],
                        sd[p + 'bias'], training=training, eps=1e-5)


def _conv_layer(sd, p, x, stride, padding, training, bn=True, relu=True):
    weight = sd[p + 'conv.weight']
    x = F.conv2d(x, weight, sd.get(p + 'conv.bias'), stride, padding,
                 groups=1 if weight.shape[1] != 1 else x.shape[1])
    if bn:
        x = _bn(sd, p + 'norm.', x, training)
    return F.relu(x) if relu else x


def _ln(sd: StateDict, p: str, x: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[p + 'weight'], sd[p + 'bias'], eps=1e-5)


def _to_map(x: Tensor, hw: Tuple[int, int]) -> Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], -1, *hw)


def _to_tokens(x: Tensor) -> Tensor:
    return x.flatten(2).transpose(1, 2)


def _dwconv_tokens(sd: StateDict, p: str, x: Tensor, hw: Tuple[int, int]) -> Tensor:
    img = _to_map(x, hw)
    return _to_tokens(F.conv2d(img, sd[p + 'weight'], sd[p + 'bias'], 1, 1, groups=img.shape[1]))


def _nc_ssd_attn(sd, p, u, hw, heads, d_state):
    b, l, d = u.shape
    inner = 2 * d
    z, xbc, dt = F.linear(u, sd[p + 'in_proj.weight']).split([inner, inner + 2 * d_state, heads],
                                                              dim=-1)
    a = F.softplus(dt + sd[p + 'dt_bias']) * torch.exp(sd[p + 'A_log'])   # ssd_positve_dA
    img = _to_map(xbc, hw)
    xbc = _to_tokens(F.silu(F.conv2d(img, sd[p + 'conv2d.weight'], sd[p + 'conv2d.bias'], 1, 1,
                                     groups=img.shape[1])))
    v, k, q = xbc.split([inner, d_state, d_state], dim=-1)
    y = official_formulation(v.reshape(b, l, heads, inner // heads), a, k, q, sd[p + 'D'])
    y = _ln(sd, p + 'norm.', y.reshape(b, l, inner)) * z                  # raw z, no SiLU
    return F.linear(y, sd[p + 'out_proj.weight'])


def _standard_attn(sd, p, u, heads):
    b, l, d = u.shape
    q, k, v = F.linear(u, sd[p + 'to_qkv.weight']).reshape(b, l, 3, heads, d // heads).unbind(2)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
    y = (attn @ v).transpose(1, 2).reshape(b, l, d)
    return F.linear(y, sd[p + 'to_out.weight'], sd[p + 'to_out.bias'])


def release_forward(sd: StateDict, x: Tensor, arch='tiny',
                    training: bool = False) -> Tuple[List[Tensor], Tensor]:
    """The released backbone (overlapped stem and downsampling, NC-SSD in stages 0-2, attention
    in stage 3, ngroups 1, no drop path).

    Args:
        sd: state dict with the release's keys (``VSSD(...).state_dict()`` has them), out norms
            ``outnorm0..3`` included.
        x: (B, 3, H, W) images.
        arch: a variant name or dict with depths, num_heads and d_state.
        training: BatchNorm with batch statistics (the running ones untouched).

    Returns:
        the four maps (B, C·2^i, ceil(H/2^(i+2)), ...) after the out norms, and the stage-3
        tokens (B, L, 8C) before them.
    """
    settings = resolve_arch(arch)
    if settings.get('ngroups', 1) != 1:
        raise ValueError('release_forward: the release uses ngroups=1, got '
                         f"{settings['ngroups']}")
    x = _conv_layer(sd, 'patch_embed.conv1.', x, 2, 1, training)
    residual = _conv_layer(sd, 'patch_embed.conv2.0.', x, 1, 1, training)
    x = _conv_layer(sd, 'patch_embed.conv2.1.', residual, 1, 1, training, relu=False) + x
    x = _conv_layer(sd, 'patch_embed.conv3.0.', x, 2, 1, training)
    x = _conv_layer(sd, 'patch_embed.conv3.1.', x, 1, 0, training, relu=False)
    hw = tuple(x.shape[-2:])
    x = _to_tokens(x)
    maps = []
    for i, depth in enumerate(settings['depths']):
        heads = settings['num_heads'][i]
        for j in range(depth):
            p = f'layers.{i}.blocks.{j}.'
            x = x + _dwconv_tokens(sd, p + 'cpe1.', x, hw)
            n = _ln(sd, p + 'norm1.', x)
            x = x + (_nc_ssd_attn(sd, p + 'attn.', n, hw, heads, settings['d_state']) if i < 3
                     else _standard_attn(sd, p + 'attn.', n, heads))
            x = x + _dwconv_tokens(sd, p + 'cpe2.', x, hw)
            m = F.gelu(F.linear(_ln(sd, p + 'norm2.', x), sd[p + 'mlp.fc1.weight'],
                                sd[p + 'mlp.fc1.bias']))
            x = x + F.linear(m, sd[p + 'mlp.fc2.weight'], sd[p + 'mlp.fc2.bias'])
        maps.append(_to_map(_ln(sd, f'outnorm{i}.', x), hw).contiguous())
        if i < 3:
            p = f'layers.{i}.downsample.conv.'
            img = _conv_layer(sd, p + '0.', _to_map(x, hw), 1, 0, training, bn=False)
            img = _conv_layer(sd, p + '1.', img, 2, 1, training, bn=False)
            img = _conv_layer(sd, p + '2.', img, 1, 0, training, relu=False)
            hw = tuple(img.shape[-2:])
            x = _to_tokens(img)
    return maps, x
