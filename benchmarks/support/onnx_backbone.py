"""A backbone exported to ONNX and run by onnxruntime, for benchmarks that swap it into a model
(model_speed.py --onnxruntime, deploy_speed.py)."""
from typing import Tuple

import torch
from torch import nn

from vssd_mm.deploy.onnx_export import save_onnx


class OnnxRuntimeBackbone(nn.Module):
    """A backbone exported to ONNX (``save_onnx``, dynamic batch and H, W) and run by onnxruntime
    on the CPU with torch's thread count: float32 images (B, 3, H, W) -> the backbone's tuple of
    maps, as CPU tensors. Inference only (no autograd); for benchmarks that swap it in.

    Args:
        backbone: a VSSD backbone (its ``out_indices`` name the outputs ``stage<i>``).
        example: an input it is traced with (a batch of 1 is repeated: torch.export specialises
            a traced size of 1).
        path: where the ONNX file is written.
    """

    def __init__(self, backbone: nn.Module, example: torch.Tensor, path: str):
        super().__init__()
        import onnxruntime
        backbone.eval()
        example = example.repeat(2, 1, 1, 1) if example.shape[0] == 1 else example
        save_onnx(backbone, example, path, [f'stage{i}' for i in backbone.out_indices])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(path, options,
                                                    providers=['CPUExecutionProvider'])

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        maps = self.session.run(None, {'image': image.detach().cpu().float().numpy()})
        return tuple(torch.from_numpy(m) for m in maps)
