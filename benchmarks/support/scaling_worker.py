"""A worker process of ``benchmarks.cpu_scaling``: holds VSSD-T and mmdet's Swin-T backbones
(random weights, train mode for training steps) and times the steps the driver asks for, one JSON
request per stdin line, one JSON answer per stdout line. Its heap behaviour is decided at start by
``VSSD_MM_MALLOC`` (see ``vssd_mm.allocator``), which is what the driver compares.

    request: {"model": "vssd_t" | "swin_t", "shape": [H, W], "mode": "inference" | "training",
              "warmup": 1, "steps": 1, "profile": false}
    answer:  {"seconds": [...], "peak_rss_mib": P, "ops": {op: self CPU seconds}}  (P: the
             process's peak resident memory during the timed steps, from /proc: VmHWM after
             resetting it; "ops" only when profiled, the timed steps under torch.profiler)
"""
import json
import sys
import time
from contextlib import contextmanager

import torch


def build(name: str) -> torch.nn.Module:
    if name == 'vssd_t':
        from vssd_mm.models import VSSD
        return VSSD(arch='tiny')
    if name == 'swin_t':  # mmdet's Swin-T as its Mask R-CNN config builds it
        from mmdet.models.backbones import SwinTransformer
        return SwinTransformer(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                               window_size=7, drop_path_rate=0.2, out_indices=(0, 1, 2, 3))
    raise ValueError(f'unknown model {name!r}')


def step_function(model: torch.nn.Module, image: torch.Tensor, mode: str):
    if mode == 'inference':
        model.eval()

        def step():
            with torch.no_grad():
                model(image)
    else:
        model.train()

        def step():
            loss = sum(out.float().mean() for out in model(image))
            loss.backward()
            model.zero_grad(set_to_none=True)
    return step


@contextmanager
def profiled(enabled: bool):
    """Yields a dict that holds, after the block, the self CPU seconds of each op run in it
    (torch.profiler) when ``enabled``; else stays empty."""
    ops = {}
    if not enabled:
        yield ops
        return
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        yield ops
    for event in prof.key_averages():
        ops[event.key] = event.self_cpu_time_total / 1e6


def _reset_peak_rss() -> None:
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def peak_rss_mib() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def serve() -> None:
    torch.manual_seed(0)
    models = {}
    for line in sys.stdin:
        request = json.loads(line)
        name = request['model']
        if name not in models:
            models[name] = build(name)
        image = torch.randn(1, 3, *request['shape'])
        step = step_function(models[name], image, request['mode'])
        for _ in range(request.get('warmup', 1)):
            step()
        _reset_peak_rss()
        seconds = []
        with profiled(request.get('profile', False)) as ops:
            for _ in range(request.get('steps', 1)):
                start = time.perf_counter()
                step()
                seconds.append(time.perf_counter() - start)
        print(json.dumps(dict(seconds=seconds, peak_rss_mib=peak_rss_mib(), ops=ops)),
              flush=True)


if __name__ == '__main__':
    from vssd_mm.allocator import reuse_large_blocks
    from vssd_mm.compat import filter_known_warnings
    filter_known_warnings()
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    print(json.dumps(dict(allocator=reuse_large_blocks(cuda=False))), flush=True)
    serve()
