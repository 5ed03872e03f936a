"""Inference and training throughput (images/s) and peak memory of a config's model, with its
backbone run eagerly, through torch.compile (Inductor) or (inference, CPU) in onnxruntime."""
import contextlib
import ctypes
import os.path as osp
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import List, Optional

import torch
from mmengine.config import Config

from vssd_mm.analysis.model_builder import build_model, mmengine_warnings_only

from .batches import synthetic_batch

BACKBONES = ('eager', 'compile', 'onnxruntime')


@dataclass
class Measurement:
    mode: str                 # 'inference' | 'training'
    precision: str            # 'fp32' | 'fp16 autocast' | 'bf16 autocast'
    backbone: str             # how the backbone ran: one of BACKBONES
    batch_size: int
    images_per_s: float
    ms_per_batch: float
    peak_memory_mib: float    # CUDA: max allocated; CPU: peak resident set of the process
                              # during this row's batches (Linux; elsewhere since its start)
    device: str

    def as_dict(self) -> dict:
        return asdict(self)


def _autocast(device: torch.device, amp: bool):
    if not amp:
        return contextlib.nullcontext(), 'fp32'
    if device.type == 'cuda':
        return torch.autocast('cuda', dtype=torch.float16), 'fp16 autocast'
    return torch.autocast(device.type, dtype=torch.bfloat16), 'bf16 autocast'


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        return
    # Hand memory freed by earlier rows back to the OS (glibc keeps it otherwise), then reset the
    # resident-set high-water mark (Linux: write '5' to clear_refs); without both, every row
    # after the first training row would repeat the training peak.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    with contextlib.suppress(OSError):
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')


def process_status_mib(field: str) -> Optional[float]:
    """A memory field of /proc/self/status ('VmRSS', 'VmHWM', ...) in MiB; None off Linux."""
    with contextlib.suppress(OSError):
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(f'{field}:'):
                    return int(line.split()[1]) / 1024  # kB
    return None


def _peak_mib(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = process_status_mib('VmHWM')
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return peak / (2**20 if sys.platform == 'darwin' else 1024)


def check_backbone_path(backbone: str, device: str, amp: bool, modes, warmup: int) -> None:
    """A clear error for a combination ``measure`` cannot time."""
    if backbone not in BACKBONES:
        raise ValueError(f'backbone must be one of {BACKBONES}, got {backbone!r}')
    if backbone == 'compile' and warmup < 1:
        raise ValueError('the compiled backbone needs warmup >= 1: its first batch compiles')
    if backbone == 'onnxruntime' and (torch.device(device).type != 'cpu' or amp
                                      or 'training' in modes):
        raise ValueError('the onnxruntime backbone runs inference in float32 on the CPU: use '
                         "device 'cpu', no AMP and modes=('inference',)")


def _swap_in_backbone(model, backbone: str, data: dict, folder: str,
                      compile_backend: str = 'inductor') -> None:
    """Make ``model`` run its backbone through ``backbone`` (the rest stays eager)."""
    if backbone == 'compile':
        # in place: parameter names (and the optimizer's) unchanged
        model.backbone.compile(backend=compile_backend)
    elif backbone == 'onnxruntime':
        from .onnx_backbone import OnnxRuntimeBackbone
        with torch.no_grad():
            example = model.data_preprocessor(data, False)['inputs']
        model.backbone = OnnxRuntimeBackbone(model.backbone, example,
                                             osp.join(folder, 'backbone.onnx'))


def measure(cfg: Config, shape, batch_size: int, device: str = 'cpu', amp: bool = False,
            modes=('inference', 'training'), warmup: int = 2, iters: int = 5,
            backbone: str = 'eager', compile_backend: str = 'inductor') -> List[Measurement]:
    """Time ``iters`` batches after ``warmup`` untimed ones, per mode.

    Inference: ``test_step`` (data preprocessing + ``predict``). Training: ``train_step`` with the
    config's optimizer wrapper (forward, loss, backward, step), on synthetic data of ``shape``.
    ``backbone``: 'eager', 'compile' (``torch.compile`` of the backbone, compiled during the
    warmup, by ``compile_backend``) or 'onnxruntime' (the backbone exported to ONNX and run by
    onnxruntime; inference, float32, CPU).
    """
    check_backbone_path(backbone, device, amp, modes, warmup)
    dev = torch.device(device)
    model, scope = build_model(cfg)
    model.to(dev)
    data = synthetic_batch(scope, batch_size, *shape)
    with tempfile.TemporaryDirectory() as folder:
        _swap_in_backbone(model, backbone, data, folder, compile_backend)
        return _time_modes(model, cfg, data, dev, amp, modes, warmup, iters, backbone)


def _time_modes(model, cfg, data, dev, amp, modes, warmup, iters, backbone
                ) -> List[Measurement]:
    from mmengine.optim import build_optim_wrapper
    batch_size = len(data['inputs'])
    results = []
    for mode in modes:
        cast, precision = _autocast(dev, amp)
        _reset_peak(dev)
        if mode == 'training':
            model.train()
            with mmengine_warnings_only():
                optim = build_optim_wrapper(model, cfg.optim_wrapper)

            def step():
                with cast:
                    model.train_step(data, optim)
        else:
            model.eval()

            def step():
                with torch.no_grad(), cast:
                    model.test_step(data)
        for _ in range(warmup):
            step()
        _sync(dev)
        start = time.perf_counter()
        for _ in range(iters):
            step()
        _sync(dev)
        seconds = (time.perf_counter() - start) / iters
        results.append(Measurement(mode, precision, backbone, batch_size, batch_size / seconds,
                                   seconds * 1e3, _peak_mib(dev), _device_name(dev)))
    return results


def _device_name(dev: torch.device) -> str:
    if dev.type == 'cuda':
        return torch.cuda.get_device_name(dev)
    return f'CPU ({torch.get_num_threads()} threads)'


def plot(measurements: List[Measurement], path: str, title: Optional[str] = None) -> None:
    """Bar chart of images/s per (mode, precision), written to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    labels = [f'{m.mode}\n{m.precision}' + ('' if m.backbone == 'eager' else f'\n{m.backbone}')
              for m in measurements]
    fig, ax = plt.subplots(figsize=(1.8 * len(labels) + 2, 3.5))
    bars = ax.bar(labels, [m.images_per_s for m in measurements], color='#4c72b0')
    ax.bar_label(bars, fmt='%.1f')
    ax.set_ylabel('images / s')
    ax.set_title(title or measurements[0].device)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
