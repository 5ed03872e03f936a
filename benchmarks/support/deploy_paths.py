"""The VSSD backbone's speed along the deployment paths, side by side in one process: the
release's forward, eager vssd_mm, torch.compile (Inductor) and onnxruntime.

"Release" is the release's forward as its layer-by-layer definition gives it
(``release_forward``: token layout with transposed copies around every convolution, NC-SSD as
per-head matmuls on permuted copies), run on this model's own parameters: same weights, same
numbers (tests/models/test_official_parity.py), the layout and formulation of the release.
"""
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Sequence

import torch
from torch import nn

from vssd_mm.models import VSSD

from .release_forward import release_forward

PATHS = ('release', 'eager', 'compile', 'onnxruntime')


class ReleaseForward(nn.Module):
    """``release_forward`` on ``model``'s live parameters and buffers: the four out-norm maps,
    BatchNorm in the mode of ``model`` (gradients reach ``model``'s parameters)."""

    def __init__(self, model: VSSD, arch: str):
        super().__init__()
        self.model, self.arch = model, arch

    def forward(self, image: torch.Tensor) -> List[torch.Tensor]:
        weights = {**dict(self.model.named_buffers()), **dict(self.model.named_parameters())}
        maps, _ = release_forward(weights, image, self.arch, training=self.model.training)
        return maps


@dataclass
class Row:
    path: str
    mode: str          # 'inference' | 'training'
    ms: float          # per batch: median over rounds of each round's mean
    ratio: float       # ms / the release's ms in this run (lower is faster)
    rounds: List[float]  # each round's mean ms


def _mean_ms(step: Callable[[], object], warmup: int, iters: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - start) / iters * 1e3


def _inference_step(model: VSSD, runner: nn.Module, image: torch.Tensor) -> Callable[[], None]:
    def step():
        model.eval()
        with torch.no_grad():
            runner(image)
    return step


def _training_step(model: VSSD, runner: nn.Module, image: torch.Tensor) -> Callable[[], None]:
    def step():
        model.train()
        model.zero_grad(set_to_none=True)
        sum(out.float().square().mean() for out in runner(image)).backward()
    return step


def measure(arch: str = 'tiny', shape: Sequence[int] = (512, 512), batch: int = 1,
            paths: Sequence[str] = PATHS, warmup: int = 1, iters: int = 3,
            rounds: int = 1) -> List[Row]:
    """ms per batch of each path, inference and (except onnxruntime) a training step (forward,
    backward of a scalar on all four maps; no optimizer), on the CPU. Each round times every
    path once (``warmup`` untimed + ``iters`` timed batches), so a slow spell of the machine
    reaches all paths alike; a row is the median of its rounds."""
    torch.manual_seed(0)
    model = VSSD(arch=arch, drop_path_rate=0., out_indices=(0, 1, 2, 3))
    image = torch.randn(batch, 3, *shape)
    steps = {}
    with tempfile.TemporaryDirectory() as folder:
        for path in paths:
            if path == 'onnxruntime':
                from .onnx_backbone import OnnxRuntimeBackbone
                runner = OnnxRuntimeBackbone(model, image, os.path.join(folder, 'vssd.onnx'))
                steps[path, 'inference'] = _inference_step(model, runner, image)
                continue
            if path == 'release':
                runner = ReleaseForward(model, arch)
            else:
                runner = torch.compile(model) if path == 'compile' else model
            steps[path, 'inference'] = _inference_step(model, runner, image)
            steps[path, 'training'] = _training_step(model, runner, image)
        times = {key: [] for key in steps}
        for _ in range(rounds):
            for key, step in steps.items():
                times[key].append(_mean_ms(step, warmup, iters))
    base = {mode: statistics.median(ms) for (path, mode), ms in times.items() if path == 'release'}
    rows = []
    for (path, mode), ms in times.items():
        median = statistics.median(ms)
        rows.append(Row(path, mode, median, median / base[mode] if mode in base
                        else float('nan'), ms))
    return rows
