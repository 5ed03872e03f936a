"""ONNX export of what an OpenMMLab config builds, through torch's default (dynamo) exporter, with
dynamic batch, height and width, checked in onnxruntime against eager PyTorch.

The file's input is the image as the config's test pipeline loads and resizes it: float
(batch, 3, H, W), pixel values 0-255, channels in the loader's order (BGR for OpenMMLab's
``LoadImageFromFile``, i.e. as ``cv2.imread`` gives them), unpadded. Inside, the graph does what
the config's data preprocessor does at test time (``preprocessing.from_data_preprocessor``:
channel order, mean / std, padding to its size divisor), then computes:
- mmpretrain classifier: ``logits`` (batch, classes), before softmax (``test_step``'s
  ``pred_score`` is their softmax);
- mmseg segmentor: ``seg_logits`` (batch, classes, H, W): whole-image inference, the decode
  head's logits resized (bilinear) to the padded input and the padding cut off, before softmax;
  mmseg's ``test_step`` then resizes them to the image's size before the test pipeline's Resize;
- mmdet detector: the backbone + neck features ``feat0``.. (the FPN levels) of the padded input
  (``model.extract_feat(model.data_preprocessor(data)['inputs'])``); the heads' box decoding and
  NMS stay outside the file.

NC-SSD is traced as its reference's standard ops (einsums) under ``torch.onnx.export``, the same
as in a user's own export script.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine.errors import ToolError
from .preprocessing import from_data_preprocessor

# the range of H and W the exported graph accepts: VSSD needs >= 32; 64 keeps its stride-32 map at
# 2 x 2 or more, 128 does the same for the stride-64 level of mmdet's FPN (torch.export would
# otherwise specialise the graph to that level's size)
MIN_SIZE = {'mmpretrain': 64, 'mmseg': 64, 'mmdet': 128}
MAX_SIZE = 2048
TASKS = {'mmpretrain': 'classifier logits', 'mmseg': 'segmentation logits',
         'mmdet': 'backbone + neck features'}


def _adaptive_bounds(size, bins: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's adaptive-pooling windows over ``size`` cells n and ``bins`` b:
    [floor(i n / b), ceil((i+1) n / b))."""
    i = torch.arange(bins, device=device)
    return (i * size) // bins, ((i + 1) * size + bins - 1) // bins


class ShapeGenericAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as window sums of an integral image, with windows computed from
    the input's (symbolic) size: an exported graph then pools right at every input size, where the
    exporter's own lowering fixes the windows of the traced size (mmseg's PPM, UperNet)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = ((output_size, output_size) if isinstance(output_size, int)
                            else tuple(output_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dim, bins in ((2, self.output_size[0]), (3, self.output_size[1])):
            if bins is None:
                continue
            start, end = _adaptive_bounds(x.shape[dim], bins, x.device)
            cumulative = F.pad(x.cumsum(dim), (1, 0) if dim == 3 else (0, 0, 1, 0))
            x = ((cumulative.index_select(dim, end) - cumulative.index_select(dim, start))
                 / (end - start).to(x.dtype).view(-1, *([1] * (3 - dim))))
        return x


def use_shape_generic_pooling(module: nn.Module) -> int:
    """Replace every ``nn.AdaptiveAvgPool2d`` inside ``module``; returns how many."""
    count = 0
    for parent in module.modules():
        for name, child in parent.named_children():
            if type(child) is nn.AdaptiveAvgPool2d:
                setattr(parent, name, ShapeGenericAdaptiveAvgPool2d(child.output_size))
                count += 1
    return count


class ImageToOutputs(nn.Module):
    """Image as the test pipeline loads it -> the config's data preprocessor (``preprocessing``)
    -> the task's tensors (see the module docstring).

    Raises:
        ToolError: not an mmpretrain / mmseg / mmdet model; an mmseg model whose ``test_cfg``
            asks for sliding-window inference (the file runs the whole image); a data
            preprocessor the file cannot reproduce (``from_data_preprocessor``).
    """

    def __init__(self, model: nn.Module, scope: str):
        super().__init__()
        if scope not in TASKS:
            raise ToolError(f'ONNX export supports mmpretrain, mmseg and mmdet configs; this one '
                            f'has default_scope={scope!r}')
        mode = (model.test_cfg or {}).get('mode', 'whole') if scope == 'mmseg' else 'whole'
        if mode != 'whole':
            raise ToolError(f"the config's model.test_cfg asks for mode={mode!r}; the ONNX "
                            "file runs the whole image (mmseg's mode='whole'): export with "
                            "--cfg-options model.test_cfg.mode=whole")
        self.model, self.scope = model, scope
        use_shape_generic_pooling(model)
        self.preprocessing = from_data_preprocessor(model.data_preprocessor)

    def forward(self, image: torch.Tensor):
        x = self.preprocessing(image)
        if self.scope == 'mmpretrain':
            return self.model(x, mode='tensor')
        if self.scope == 'mmseg':
            # mmseg: the decode head's logits resized to the padded input, the padding cut off
            logits = F.interpolate(self.model(x, mode='tensor'), size=x.shape[2:],
                                   mode='bilinear',
                                   align_corners=self.model.decode_head.align_corners)
            return logits[:, :, :image.shape[2], :image.shape[3]]
        return tuple(self.model.extract_feat(x))


def output_names(module: ImageToOutputs, example: torch.Tensor) -> List[str]:
    if module.scope == 'mmpretrain':
        return ['logits']
    if module.scope == 'mmseg':
        return ['seg_logits']
    with torch.no_grad():
        return [f'feat{i}' for i in range(len(module(example)))]


def example_image(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Random pixels in 0-255, float32 (batch, 3, height, width)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width), generator=g).float()


def save_onnx(module: nn.Module, example: torch.Tensor, out: str, names: List[str],
              min_size: int = 64) -> None:
    """``module`` exported by torch's ONNX exporter (``torch.onnx.export(dynamo=True)``, as a
    user's own script would call it) with dynamic batch and H, W in [min_size, MAX_SIZE], written
    to ``out``; the input is called 'image'. NC-SSD is traced as its reference's standard ops
    (``vssd_mm.ops.nc_ssd.op.nc_ssd_node``).

    The example batch must be >= 2: torch.export specialises a traced size of 1."""
    dims = {0: torch.export.Dim('batch', min=1, max=1024),
            2: torch.export.Dim('height', min=min_size, max=MAX_SIZE),
            3: torch.export.Dim('width', min=min_size, max=MAX_SIZE)}
    onnx_program = torch.onnx.export(module, (example,), dynamo=True, dynamic_shapes=(dims,),
                                     input_names=['image'], output_names=names, verbose=False)
    onnx_program.save(out)


@dataclass
class CheckResult:
    shape: Tuple[int, ...]
    max_abs_error: float
    max_rel_error: float   # max |onnxruntime - eager| / max |eager|, worst output


def check_in_onnxruntime(path: str, module: nn.Module, image: torch.Tensor) -> CheckResult:
    """Run the file in onnxruntime (CPU) on ``image`` and compare with eager PyTorch."""
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: image.numpy()})
    with torch.no_grad():
        expected = module(image)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    abs_err = rel_err = 0.
    for g, e in zip(got, expected):
        e = e.numpy()
        if g.shape != e.shape:
            raise RuntimeError(f'onnxruntime gave an output of shape {g.shape}, eager {e.shape}')
        diff = float(np.abs(g - e).max())
        abs_err = max(abs_err, diff)
        rel_err = max(rel_err, diff / max(float(np.abs(e).max()), 1e-12))
    return CheckResult(tuple(image.shape), abs_err, rel_err)


def export_onnx(module: ImageToOutputs, out: str, shape: Sequence[int],
                check_shape: Optional[Sequence[int]] = None) -> Tuple[List[str], CheckResult]:
    """Export ``module`` traced at 2 x 3 x ``shape`` to ``out`` and check it at ``check_shape``
    (default: ``shape`` + 32 rows, + 64 columns, batch 1). Returns (output names, check)."""
    module.eval()
    example = example_image(2, *shape)
    names = output_names(module, example)
    save_onnx(module, example, out, names, MIN_SIZE[module.scope])
    height, width = check_shape or (shape[0] + 32, shape[1] + 64)
    return names, check_in_onnxruntime(out, module, example_image(1, height, width, seed=1))
