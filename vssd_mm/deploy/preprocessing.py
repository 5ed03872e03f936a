"""The test-time work of a config's data preprocessor, as a module an exported graph can hold.

The three libraries name the same options differently (BGR -> RGB: mmengine's and mmdet's
``ImgDataPreprocessor._channel_conversion``, mmseg's ``SegDataPreProcessor.channel_conversion``,
mmpretrain's ``ClsDataPreprocessor.to_rgb``; padding: ``pad_size_divisor`` / ``pad_value``, or
mmseg's ``test_cfg`` + ``pad_val``). Rather than reading those names, ``from_data_preprocessor``
runs the preprocessor itself on probe images and reads off what it did: a per-pixel affine map
of the channels (channel order, mean, std) and padding at the bottom and right to a multiple of a
divisor. It then checks the result against the preprocessor on a random image, so the module
equals the library's preprocessing or is not built.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.errors import ToolError

# |module - preprocessor| / max |preprocessor| allowed on the random check image (float32 rounding
# of a different but equal formula: (x - mean) / std against x / std - mean / std)
CHECK_TOLERANCE = 1e-5


class Preprocessing(nn.Module):
    """Image as the test pipeline loads it -> what the data preprocessor hands the model.

    ``forward(image)``: image (batch, 3, H, W) float, 0-255, in the channel order of the test
    pipeline's loader (BGR for OpenMMLab's ``LoadImageFromFile``) -> (batch, 3, H', W'):
    out[:, o] = sum_c weight[o, c] * image[:, c] + bias[o], then padded at the bottom and right
    with ``pad_value`` to H' = H rounded up to a multiple of ``divisor[0]`` (W' likewise).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, divisor: Tuple[int, int],
                 pad_value: float):
        super().__init__()
        self.register_buffer('weight', weight.float().reshape(3, 3, 1, 1))
        self.register_buffer('bias', bias.float().reshape(3))
        self.divisor, self.pad_value = tuple(divisor), float(pad_value)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(image, self.weight, self.bias)
        if self.divisor == (1, 1):
            return x
        pad_h = (-x.shape[2]) % self.divisor[0]
        pad_w = (-x.shape[3]) % self.divisor[1]
        return F.pad(x, (0, pad_w, 0, pad_h), value=self.pad_value)


def run_preprocessor(preprocessor: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The preprocessor in test mode on one image (3, H, W) uint8, as a dataloader would give it
    (``pseudo_collate``: a list of images, a list of data samples) -> (3, H', W') float."""
    from mmengine.structures import BaseDataElement
    with torch.no_grad():
        out = preprocessor({'inputs': [image], 'data_samples': [BaseDataElement()]},
                           False)['inputs']
    return out[0].float()


def from_data_preprocessor(preprocessor: nn.Module, seed: int = 0) -> Preprocessing:
    """The ``Preprocessing`` that equals ``preprocessor`` (a model's ``data_preprocessor``) on
    3-channel images.

    Raises:
        ToolError: the preprocessor does something else (not a per-pixel affine map of the
            channels, padding to a fixed size instead of a multiple, a per-channel pad value).
    """
    name = type(preprocessor).__name__
    zeros = torch.zeros(3, 1, 1, dtype=torch.uint8)
    base = run_preprocessor(preprocessor, zeros)
    if base.shape[0] != 3:
        raise ToolError(f'the data preprocessor {name} gives {base.shape[0]} channels from 3; '
                        'ONNX export reproduces a per-pixel map of 3 channels to 3')
    columns = []
    for channel in range(3):
        probe = zeros.clone()
        probe[channel] = 255
        columns.append((run_preprocessor(preprocessor, probe) - base)[:, 0, 0] / 255)
    weight, bias = torch.stack(columns, dim=1), base[:, 0, 0]
    divisor = tuple(base.shape[1:])
    pad_values = base[:, -1, -1] if divisor != (1, 1) else torch.zeros(3)
    if not bool((pad_values == pad_values[0]).all()):
        raise ToolError(f'the data preprocessor {name} pads each channel with another value '
                        f'({pad_values.tolist()}); ONNX export pads with one value')
    module = Preprocessing(weight, bias, divisor, float(pad_values[0]))

    # a size that is no multiple of the divisor, and one past it: padding to a fixed size
    # gives another shape than padding to a multiple
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, divisor[0] + 5, divisor[1] + 3), generator=g,
                          dtype=torch.uint8)
    expected = run_preprocessor(preprocessor, image)
    with torch.no_grad():
        got = module(image[None].float().to(expected.device))[0]
    if got.shape != expected.shape:
        raise ToolError(f'the data preprocessor {name} pads a {tuple(image.shape[1:])} image to '
                        f'{tuple(expected.shape[1:])}, not to a multiple of {divisor}: ONNX '
                        'export reproduces padding to a multiple (size_divisor / '
                        'pad_size_divisor), not to a fixed size')
    error = float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
    if error > CHECK_TOLERANCE:
        raise ToolError(f'the data preprocessor {name} is not a per-pixel affine map of the '
                        f'channels plus padding (relative error {error:.1e} of the closest '
                        'such map): ONNX export cannot reproduce it')
    return module
