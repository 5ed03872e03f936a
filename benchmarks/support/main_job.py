"""The main job's training step, measured: Mask R-CNN / UperNet with a VSSD-T backbone against the
same model with mmdet's / mmseg's Swin-T, in fp32, fp16 AMP and bf16 AMP through mmengine's
``AmpOptimWrapper`` (what ``tools/train.py --amp`` runs), on synthetic batches with ground truth.

Per run: images/s from the median of the last iterations, peak memory, whether every loss
stayed finite and, for NC-SSD in auto mode, whether any of it ran on the PyTorch reference instead
of the kernels (``nc_ssd_fallback``); optionally a profile of a few steps (the kernels that take
the time).
"""
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from vssd_mm.analysis.model_builder import build_model, mmengine_warnings_only
from vssd_mm.configs import config_path

from .batches import synthetic_batch

# (task, backbone) -> the config whose model is measured: ours from vssd_mm's packaged configs,
# Swin-T from the libraries' own
CONFIGS: Dict[Tuple[str, str], str] = {
    ('mask_rcnn', 'VSSD-T'): 'mmdet/mask_rcnn_vssd_t_1x.py',
    ('mask_rcnn', 'Swin-T'): 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    ('upernet', 'VSSD-T'): 'mmseg/upernet_vssd_t_512x512_160k_ade20k.py',
    ('upernet', 'Swin-T'):
        'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
}
PRECISIONS = {'fp32': None, 'fp16': 'float16', 'bf16': 'bfloat16'}


@dataclass
class TrainRun:
    task: str
    backbone: str
    precision: str              # 'fp32' | 'fp16' | 'bf16' (AMP through AmpOptimWrapper)
    nc_ssd_backend: str         # VSSD rows: 'triton' | 'torch'; '-' for Swin
    batch_size: int
    height: int
    width: int
    iterations: int
    images_per_s: float         # from the median iteration time of the last ``timed`` ones
    ms_per_iter: float
    peak_memory_mib: float      # CUDA: max allocated; CPU: nan
    losses_finite: bool
    first_nonfinite: Optional[int]  # iteration of the first NaN/Inf loss, None if none
    last_loss: float
    device: str
    # auto mode: 'none', or what ran on the reference instead of the kernels (fallback_during);
    # '-' where nothing could fall back (Swin; backend 'torch'; 'triton', where it is an error)
    nc_ssd_fallback: str = '-'

    def as_dict(self) -> dict:
        return asdict(self)


def nc_ssd_fallbacks() -> dict:
    """This process's NC-SSD fallbacks so far (``dispatch.fallbacks()``): the give-up reason and
    the per-call routings to the reference by kind of reason."""
    from vssd_mm.ops.nc_ssd import dispatch
    return dispatch.fallbacks()


def fallback_during(before: dict, after: dict) -> str:
    """What an auto-mode run ran on the PyTorch reference instead of the kernels, from
    ``nc_ssd_fallbacks()`` before and after it: 'none', or '; '-joined parts 'gave up: REASON'
    (also where an earlier run gave up: the rest of the process runs the reference) and
    'routed KIND xCALLS: REASON' for the calls the kernels could not serve."""
    parts = []
    if after['given_up'] is not None:
        parts.append(f'gave up: {after["given_up"]}')
    for kind, (calls, reason) in after['routed'].items():
        calls -= before['routed'].get(kind, (0, None))[0]
        if calls:
            parts.append(f'routed {kind} x{calls}: {reason}')
    return '; '.join(parts) or 'none'


def load_task_config(task: str, backbone: str, nc_ssd_backend: str = 'auto') -> Config:
    """The config of (task, backbone), with VSSD's NC-SSD backend set."""
    import vssd_mm  # noqa: F401  (registers VSSD; the config's custom_imports need it too)
    from mmengine.hub import get_config
    name = CONFIGS[task, backbone]
    cfg = get_config(name) if '::' in name else Config.fromfile(str(config_path(name)))
    if backbone.startswith('VSSD'):
        cfg.model.backbone.nc_ssd_backend = nc_ssd_backend
    return cfg


def _optim_wrapper(model, cfg: Config, precision: str):
    from mmengine.optim import build_optim_wrapper
    wrapper_cfg = cfg.optim_wrapper.copy()
    if PRECISIONS[precision] is not None:
        wrapper_cfg.update(type='AmpOptimWrapper', loss_scale='dynamic',
                           dtype=PRECISIONS[precision])
    with mmengine_warnings_only():
        return build_optim_wrapper(model, wrapper_cfg)


def train_run(task: str, backbone: str, precision: str, shape: Tuple[int, int],
              batch_size: int = 2, iterations: int = 30, timed: int = 20,
              nc_ssd_backend: str = 'auto', device: str = 'cuda',
              profile_steps: int = 0) -> Tuple[TrainRun, Optional[str]]:
    """Train the model of (task, backbone) from random init for ``iterations`` steps on one
    synthetic batch of ``batch_size`` images of ``shape`` (H, W) and time the last ``timed``.

    Returns the run and, with ``profile_steps`` > 0, a table of the kernels that took the time in
    that many further steps (torch.profiler; CUDA kernels on a GPU, operators on the CPU). With
    ``nc_ssd_backend='auto'`` the run records any NC-SSD fallback of its steps, profiled ones
    included (``nc_ssd_fallback``).
    """
    from mmengine.model import revert_sync_batchnorm
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
    if timed < 1 or timed > iterations:
        raise ValueError(f'timed must be in 1..iterations ({iterations}), got {timed}')
    dev = torch.device(device)
    cfg = load_task_config(task, backbone, nc_ssd_backend)
    model, scope = build_model(cfg)
    model = revert_sync_batchnorm(model).to(dev)  # as mmengine's Runner does without DDP
    model.train()
    optim = _optim_wrapper(model, cfg, precision)
    data = synthetic_batch(scope, batch_size, *shape)
    if dev.type == 'cuda':
        torch.cuda.empty_cache()  # what earlier runs in this process left cached
        torch.cuda.reset_peak_memory_stats(dev)
    seconds, first_nonfinite, loss = [], None, float('nan')
    fallbacks_before = nc_ssd_fallbacks()
    for step in range(iterations):
        start = time.perf_counter()
        log_vars = model.train_step(data, optim)
        if dev.type == 'cuda':
            torch.cuda.synchronize(dev)
        seconds.append(time.perf_counter() - start)
        values = [float(v.detach()) if torch.is_tensor(v) else float(v)
                  for v in log_vars.values()]
        loss = values[list(log_vars).index('loss')]
        if first_nonfinite is None and not all(math.isfinite(v) for v in values):
            first_nonfinite = step
    median = statistics.median(seconds[-timed:])
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == 'cuda' else float('nan')
    profile = _profile(model, optim, data, dev, profile_steps) if profile_steps else None
    vssd = backbone.startswith('VSSD')
    fallback = (fallback_during(fallbacks_before, nc_ssd_fallbacks())
                if vssd and nc_ssd_backend == 'auto' else '-')
    run = TrainRun(task, backbone, precision, nc_ssd_backend if vssd else '-', batch_size,
                   *shape, iterations, batch_size / median, median * 1e3, peak,
                   first_nonfinite is None, first_nonfinite, loss,
                   torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU', fallback)
    return run, profile


def _profile(model, optim, data, dev: torch.device, steps: int, top: int = 15) -> str:
    """The ``top`` kernels (CUDA) or operators (CPU) by their own time over ``steps`` steps,
    with their share of the total."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CUDA] if dev.type == 'cuda' else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        for _ in range(steps):
            model.train_step(data, optim)
        if dev.type == 'cuda':
            torch.cuda.synchronize(dev)
    attr = 'self_device_time_total' if dev.type == 'cuda' else 'self_cpu_time_total'
    events = [e for e in prof.key_averages() if getattr(e, attr, 0) > 0]
    total = sum(getattr(e, attr) for e in events) or 1
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    lines = [f'{"share":>6s} {"ms/step":>8s} {"calls":>6s}  kernel']
    for e in events[:top]:
        lines.append(f'{100 * getattr(e, attr) / total:5.1f}% '
                     f'{getattr(e, attr) / 1e3 / steps:8.2f} {e.count // steps:6d}  {e.key[:90]}')
    return '\n'.join(lines)


def ratio_table(runs: Sequence[TrainRun]) -> List[str]:
    """One line per VSSD run: its step time and peak memory relative to Swin-T's run of the same
    task and precision (the goals: time <= 1.2x, memory <= 1.0x), flagged where NC-SSD fell back
    to the reference during the run."""
    swin = {(r.task, r.precision): r for r in runs if r.backbone == 'Swin-T'}
    lines = []
    for r in runs:
        ref = swin.get((r.task, r.precision))
        if r.backbone == 'Swin-T' or ref is None:
            continue
        memory = (f'{r.peak_memory_mib / ref.peak_memory_mib:.2f}x'
                  if math.isfinite(r.peak_memory_mib) else 'not measured (CPU)')
        flag = '' if r.nc_ssd_fallback in ('-', 'none') else ' (NC-SSD fell back, see above)'
        lines.append(f'{r.task:9s} {r.precision:4s} NC-SSD {r.nc_ssd_backend:6s}: step time '
                     f'{r.ms_per_iter / ref.ms_per_iter:.2f}x Swin-T, peak memory {memory}{flag}')
    return lines
