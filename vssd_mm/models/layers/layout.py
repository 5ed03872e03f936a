"""Token sequences <-> feature maps for the convolutions between token mixers.

Maps are dense NCHW, and the gradient handed back from tokens to a map is made dense NCHW too:
on torch 2.13's CPU build, BatchNorm's backward gets wrong input gradients at batch size 1 when
the incoming gradient has the channels-last strides of the tokens' transposed view (the stem and
the downsampling layers end in BatchNorm). Channels-last maps (oneDNN's faster layout on CPU)
have the same kind of fault at batch size 1 in their convolution + BatchNorm backward. The
gradient tests of tests/models/test_vssd.py check both against finite differences.
Dense maps (not a strided view of the tokens) also let Inductor lower the depthwise convolution
with dynamic H x W.
"""
from typing import Tuple

import torch


class _DenseGradient(torch.autograd.Function):
    """Identity; its backward hands on the gradient as a dense (contiguous) tensor."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


def tokens_to_map(x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """(B, H*W, C) tokens, any strides -> (B, C, H, W), dense NCHW."""
    batch, _, channels = x.shape
    return x.transpose(1, 2).reshape(batch, channels, *hw).contiguous()


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C), a view; the gradient reaches ``x`` dense NCHW."""
    return _DenseGradient.apply(x).flatten(2).transpose(1, 2)
