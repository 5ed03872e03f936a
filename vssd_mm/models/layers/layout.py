"""Token sequences <-> feature maps for the convolutions between token mixers.

Tokens (B, H*W, C) in row-major order are an NHWC image: in eager mode the maps are made dense
channels-last (one copy), convolutions keep that layout (oneDNN on CPU, cuDNN on GPU) and the
tokens after them are a view. In graphs (torch.compile / torch.export) the maps are dense NCHW:
the compilers choose layouts themselves, and the symbolic strides of channels-last maps with a
dynamic H x W add shape guards that torch.export rejects.
"""
from typing import Tuple

import torch


def _memory_format() -> torch.memory_format:
    if torch.compiler.is_compiling():
        return torch.contiguous_format
    return torch.channels_last


def to_conv_layout(x: torch.Tensor) -> torch.Tensor:
    """A (B, C, H, W) map, dense in the layout the convolutions run in."""
    return x.contiguous(memory_format=_memory_format())


def tokens_to_map(x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """(B, H*W, C) tokens, any strides -> (B, C, H, W), dense (see the module docstring)."""
    batch, _, channels = x.shape
    return to_conv_layout(x.transpose(1, 2).reshape(batch, channels, *hw))


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C); a view for a channels-last map."""
    return x.flatten(2).transpose(1, 2)
