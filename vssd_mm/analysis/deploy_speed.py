"""The VSSD backbone's speed along the deployment paths, side by side in one process: the
release's formulation, eager vssd_mm, torch.compile (Inductor) and onnxruntime.

"Release formulation" is this model with the release's NC-SSD swapped back in: per-head matmuls on
permuted copies (``vssd_mm.ops.nc_ssd.benchmark.official_formulation``) instead of the reference's
einsums. Same weights, same numbers.
"""
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Sequence

import torch
from torch import nn

from ..models import VSSD
from ..models.layers import nc_ssd_mixer
from ..ops.nc_ssd.benchmark import official_formulation

PATHS = ('release', 'eager', 'compile', 'onnxruntime')


@contextlib.contextmanager
def release_formulation() -> Iterator[None]:
    """Inside: VSSD's mixers compute NC-SSD in the release's formulation."""
    saved = nc_ssd_mixer.nc_ssd
    nc_ssd_mixer.nc_ssd = lambda x, w, B, C, D, backend='auto': official_formulation(
        x, w, B.flatten(2), C.flatten(2), D)
    try:
        yield
    finally:
        nc_ssd_mixer.nc_ssd = saved


@dataclass
class Row:
    path: str
    mode: str          # 'inference' | 'training'
    ms: float          # per batch, mean of the timed iterations
    ratio: float       # ms / the release formulation's ms in this run (lower is faster)


def _mean_ms(step: Callable[[], object], warmup: int, iters: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - start) / iters * 1e3


def _training_step(model: nn.Module, image: torch.Tensor) -> Callable[[], None]:
    def step():
        model.zero_grad(set_to_none=True)
        sum(out.float().square().mean() for out in model(image)).backward()
    return step


def _onnxruntime_session(model: nn.Module, image: torch.Tensor, folder: str):
    import onnxruntime

    from ..deploy.onnx_export import save_onnx
    path = os.path.join(folder, 'vssd.onnx')
    example = image.repeat(2, 1, 1, 1) if image.shape[0] == 1 else image
    save_onnx(model, example, path, [f'stage{i}' for i in model.out_indices])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def measure(arch: str = 'tiny', shape: Sequence[int] = (512, 512), batch: int = 1,
            paths: Sequence[str] = PATHS, warmup: int = 1, iters: int = 3) -> List[Row]:
    """ms per batch of each path, inference and (except onnxruntime) a training step (forward,
    backward of a scalar on all four maps; no optimizer), on the CPU."""
    torch.manual_seed(0)
    model = VSSD(arch=arch, drop_path_rate=0., out_indices=(0, 1, 2, 3))
    image = torch.randn(batch, 3, *shape)
    times = {}
    for path in paths:
        if path == 'onnxruntime':
            model.eval()
            with tempfile.TemporaryDirectory() as folder:
                session = _onnxruntime_session(model, image, folder)
                feed = {'image': image.numpy()}
                times[path, 'inference'] = _mean_ms(lambda: session.run(None, feed),
                                                    warmup, iters)
            continue
        runner = torch.compile(model) if path == 'compile' else model
        context = release_formulation if path == 'release' else contextlib.nullcontext
        with context():
            model.eval()
            with torch.no_grad():
                times[path, 'inference'] = _mean_ms(lambda: runner(image), warmup, iters)
            model.train()
            times[path, 'training'] = _mean_ms(_training_step(runner, image), warmup, iters)
    base = {mode: times.get(('release', mode)) for mode in ('inference', 'training')}
    return [Row(path, mode, ms, ms / base[mode] if base[mode] else float('nan'))
            for (path, mode), ms in times.items()]
