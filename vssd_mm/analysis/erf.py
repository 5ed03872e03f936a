"""Effective receptive field (Luo et al. 2016), as in the VSSD paper's figure: the gradient of the
centre of the last stage's output w.r.t. the input image, magnitudes summed over channels and
averaged over images."""
from typing import Iterable

import numpy as np
import torch
from torch import nn


def effective_receptive_field(backbone: nn.Module, images: Iterable[torch.Tensor],
                              stage: int = -1) -> np.ndarray:
    """ERF map of ``backbone`` (returns a tuple of NCHW maps).

    Args:
        images: normalised (3, H, W) tensors, all of one size.
        stage: which returned map to read (default: the last).

    Returns:
        (H, W) float64 map: mean over images of sum_c |d centre / d input_c|, where ``centre`` is
        the channel sum of ReLU(``stage``'s output) at its central position.
    """
    backbone.eval()
    total, count = None, 0
    for image in images:
        x = image[None].clone().requires_grad_(True)
        out = backbone(x)[stage]
        h, w = out.shape[-2:]
        # ReLU before the sum, as RepLKNet's ERF script (which VMamba/VSSD-style figures use):
        # the plain channel sum of a LayerNorm-ed map is constant at init (all-equal gains), so
        # its gradient would be rounding noise
        torch.relu(out[0, :, h // 2, w // 2]).sum().backward()
        grad = x.grad[0].abs().sum(0).double().numpy()
        total = grad if total is None else total + grad
        count += 1
    if count == 0:
        raise ValueError('effective_receptive_field needs at least one image')
    return total / count


def erf_image(erf: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 heat map (BGR) of ``log(1 + erf)``, scaled to its maximum, as in the
    paper's figures."""
    import cv2
    scaled = np.log1p(erf / max(erf.max(), 1e-30) * 1e3)
    scaled = (255 * scaled / max(scaled.max(), 1e-30)).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_JET)
