"""Parameters, feature-map shapes and forward time of VSSD backbones."""
import time
from typing import Dict, List, Sequence, Tuple

import torch

from ..models import VSSD

# the paper's classification-model sizes (millions of parameters, readme rounding)
PAPER_CLASSIFIER_PARAMS_M = {'micro': 14, 'tiny': 24, 'small': 40, 'base': 89}


def classifier_params(arch: str, num_classes: int = 1000) -> int:
    """Parameters of the ImageNet classifier: stage-4 features, final LayerNorm, linear head."""
    backbone = VSSD(arch, out_indices=(3,))
    width = backbone.num_features[-1]
    return sum(p.numel() for p in backbone.parameters()) + width * num_classes + num_classes


@torch.no_grad()
def summarize_backbone(arch: str, sizes: Sequence[Tuple[int, int]], repeats: int = 1,
                       device: str = 'cpu') -> Dict[str, object]:
    """One row per variant: parameters (backbone / classifier), output shapes and mean forward
    seconds for each (height, width) input at batch 1."""
    model = VSSD(arch).to(device).eval()
    row: Dict[str, object] = dict(
        arch=arch, backbone_params=sum(p.numel() for p in model.parameters()),
        classifier_params=classifier_params(arch),
        paper_params_m=PAPER_CLASSIFIER_PARAMS_M.get(arch))
    shapes: List[List[Tuple[int, ...]]] = []
    seconds: List[float] = []
    for height, width in sizes:
        x = torch.randn(1, 3, height, width, device=device)
        outs = model(x)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            outs = model(x)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        seconds.append((time.perf_counter() - start) / repeats)
        shapes.append([tuple(o.shape[1:]) for o in outs])
    row.update(shapes=shapes, seconds=seconds)
    return row
