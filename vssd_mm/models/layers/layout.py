"""Token sequences <-> feature maps for the convolutions between token mixers.

Maps are dense NCHW, and the gradient handed back from tokens to a map is made dense NCHW too:
on torch 2.13's CPU build, BatchNorm's backward gets wrong input gradients at batch size 1 when
the incoming gradient has the channels-last strides of the tokens' transposed view (the stem and
the downsampling layers end in BatchNorm). Channels-last maps (oneDNN's faster layout on CPU)
have the same kind of fault at batch size 1 in their convolution + BatchNorm backward. The
gradient tests of tests/models/test_vssd_gradients.py check both against finite differences.
Dense maps (not a strided view of the tokens) also let Inductor lower the depthwise convolution
with dynamic H x W.

Eager CPU runs in float32/bfloat16 take another path (``token_layout``), where neither fault shows
(float32; the gradient test at batch 1 and 2 covers it) and oneDNN's channels-last kernels are
faster: the stem runs on channels-last maps; the block's depthwise convolutions read the tokens'
own memory as a channels-last map (``TokenLayout.depthwise_conv``, no copy in or out); the
downsampling's 1x1 convolutions run as linears on the tokens (``ConvLayer.on_tokens``). The stem
and every downsampling hand on dense (row-major) tokens: a transposed residual stream would make
every LayerNorm copy its input (and its gradient) and every depthwise convolution see an NCHW map,
oneDNN's slow layout for them. Without autograd and without forward hooks, element-wise steps there
also write into the fresh tensors they read (``TokenLayout.in_place``) instead of allocating new
ones; some of those tensors are a layer's output (a Linear's before the GELU, a LayerNorm's
before the gate), so a hook anywhere in the model turns this off.
"""
from dataclasses import dataclass
from typing import Callable, Tuple

import torch
from torch import nn
from torch.nn.modules import module as module_hooks


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


@dataclass(frozen=True)
class TokenLayout:
    """How one forward lays out the maps of the convolutions between token mixers; VSSD decides it
    once per forward (``token_layout``) and hands it to every layer. Layers called without one
    run the dense NCHW path, the release's definition.

    Attributes:
        channels_last: convolutions read the tokens as channels-last maps (oneDNN), no copies.
        in_place: element-wise steps write into the fresh intermediates they read (never into a
            layer's input; into a submodule's output, which only a hook could still see). Only
            without autograd and hooks: autograd would save a copy of an overwritten
            input (SiLU) or replay writes into views (``CopySlices``), costing more than the
            allocation saved.
    """
    channels_last: bool = False
    in_place: bool = False

    def depthwise_conv(self, conv: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       hw: Tuple[int, int]) -> torch.Tensor:
        """``conv`` (maps (B, C, H, W) -> (B, C, H, W), no BatchNorm) on tokens (B, H*W, C) ->
        tokens, through a channels-last view of the tokens or through dense maps."""
        if not self.channels_last:
            return map_to_tokens(conv(tokens_to_map(x, hw)))
        return conv(tokens_as_channels_last_map(x, hw)).permute(0, 2, 3, 1).flatten(1, 2)

    def add(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        """x + branch, where ``branch`` is a fresh tensor nothing else reads."""
        return branch.add_(x) if self.in_place else x + branch


DENSE = TokenLayout()


def token_layout(image: torch.Tensor, observed: bool = False) -> TokenLayout:
    """The layout of a forward on ``image``: channels-last tokens in eager CPU runs in
    float32/bfloat16 (oneDNN's faster layout, and neither fault above shows there), writing in
    place when autograd does not record and no hook observes the layers (``observed``, see
    ``has_forward_hooks``: an in-place step overwrites another layer's output after that layer
    returned it). Graphs (Inductor's dynamic H x W lowering wants dense maps), CUDA and float64
    keep dense NCHW maps."""
    channels_last = (image.device.type == 'cpu' and image.dtype in (torch.float32, torch.bfloat16)
                     and not torch.compiler.is_compiling() and not torch.jit.is_tracing())
    return TokenLayout(channels_last,
                       channels_last and not torch.is_grad_enabled() and not observed)


def has_forward_hooks(model: nn.Module) -> bool:
    """Whether a forward or forward-pre hook sees the inputs or outputs of ``model``'s modules
    (its own, its submodules', or a global one): feature extractors, FLOP counters and
    distillation read them after the layer returned, so nothing may overwrite them."""
    if module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def tokens_as_channels_last_map(x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """(B, H*W, C) tokens -> (B, C, H, W), a view with channels-last strides (no copy)."""
    return x.unflatten(1, hw).permute(0, 3, 1, 2)
