"""VSSD-T against mmdet's Swin-T on the CPU at growing image sizes, side by side in one run:
backbone only, batch 1, random weights, inference and a training step (forward + backward), each
in one worker process per heap behaviour (our tools' ``reuse_large_blocks`` and glibc's default,
``VSSD_MM_MALLOC=system``), rounds interleaved, median of rounds. Prints seconds, the VSSD/Swin
ratio, VSSD's time per megapixel relative to the smallest size, and the peak resident memory of a
training step at one size (each model in a fresh process per heap behaviour).

    python -m benchmarks.cpu_scaling [--sizes 512x512 800x1344 1024x1792] [--rounds 3]
                                     [--threads 2] [--memory-size 800x1344]
                                     [--profile {training,inference}]

--profile MODE: instead, VSSD-T's training step (or inference) at each size under torch.profiler
(heap: reuse), the ops whose time per megapixel grows most from the smallest size to the largest.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from vssd_mm.arguments import positive_int

REPO = Path(__file__).resolve().parents[1]
MODELS = ('vssd_t', 'swin_t')
MODES = ('inference', 'training')
ALLOCATORS = {'reuse': '', 'system': 'system'}  # name -> VSSD_MM_MALLOC


def size(text: str):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be HxW, e.g. 800x1344, got {text!r}') from None
    if min(h, w) < 32:
        raise argparse.ArgumentTypeError(f'must be at least 32x32, got {text!r}')
    return h, w


class Worker:
    """A ``benchmarks.support.scaling_worker`` process with one heap behaviour."""

    def __init__(self, allocator: str, threads: int):
        env = {**os.environ, 'VSSD_MM_MALLOC': ALLOCATORS[allocator],
               'PYTHONPATH': os.pathsep.join(filter(None, [str(REPO),
                                                           os.environ.get('PYTHONPATH')]))}
        self.log = tempfile.TemporaryFile(mode='w+')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'benchmarks.support.scaling_worker', str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.allocator = json.loads(self._read())['allocator']

    def _read(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise SystemExit('error: a benchmark worker stopped:\n' + self.log.read()[-3000:])
        return line

    def ask(self, model: str, shape, mode: str, warmup: int = 1, steps: int = 1,
            profile: bool = False) -> dict:
        self.proc.stdin.write(json.dumps(dict(model=model, shape=list(shape), mode=mode,
                                              warmup=warmup, steps=steps, profile=profile))
                              + '\n')
        self.proc.stdin.flush()
        return json.loads(self._read())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def time_rounds(sizes, rounds: int, threads: int) -> dict:
    """{(allocator, model, size, mode): [seconds per round]}, rounds interleaved over every
    combination and the allocators' order alternating."""
    workers = {name: Worker(name, threads) for name in ALLOCATORS}
    times = {}
    try:
        for r in range(rounds):
            order = list(workers) if r % 2 == 0 else list(workers)[::-1]
            for shape in sizes:
                for mode in MODES:
                    for model in MODELS:
                        for name in order:
                            answer = workers[name].ask(model, shape, mode)
                            times.setdefault((name, model, shape, mode), []).append(
                                answer['seconds'][0])
            print(f'round {r + 1}/{rounds} done', file=sys.stderr, flush=True)
        allocators = {name: w.allocator for name, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    return times, allocators


def peak_memory(shape, threads: int) -> dict:
    """{(allocator, model): peak RSS in MiB of a training step at ``shape``}, each in a fresh
    worker (warm-up step, then the measured one)."""
    peaks = {}
    for model in MODELS:
        for name in ALLOCATORS:
            worker = Worker(name, threads)
            try:
                peaks[name, model] = worker.ask(model, shape, 'training')['peak_rss_mib']
            finally:
                worker.close()
    return peaks


def report(times: dict, peaks: dict, sizes, memory_size, threads: int, allocators: dict) -> None:
    import torch
    median = {key: statistics.median(values) for key, values in times.items()}
    rounds = len(next(iter(times.values())))
    print(f'VSSD-T vs mmdet Swin-T backbones, batch 1, CPU, {threads} threads, torch '
          f'{torch.__version__}, median of {rounds} rounds (heap: reuse = {allocators["reuse"]}, '
          f'system = glibc default)')
    print(f'{"heap":7s} {"mode":10s} {"size":>10s} {"VSSD-T s":>9s} {"Swin-T s":>9s} '
          f'{"VSSD/Swin":>9s} {"VSSD s/MP":>9s} {"x smallest":>10s}')
    for name in ALLOCATORS:
        for mode in MODES:
            base = None
            for shape in sizes:
                vssd, swin = (median[name, m, shape, mode] for m in MODELS)
                per_mp = vssd / (shape[0] * shape[1] / 1e6)
                base = base or per_mp
                print(f'{name:7s} {mode:10s} {shape[0]:>4d}x{shape[1]:<5d} {vssd:9.2f} '
                      f'{swin:9.2f} {vssd / swin:9.2f} {per_mp:9.2f} {per_mp / base:10.2f}')
    print(f'\npeak resident memory of a training step at {memory_size[0]}x{memory_size[1]} '
          '(MiB, fresh process each)')
    print(f'{"model":8s} ' + ' '.join(f'{n:>8s}' for n in ALLOCATORS) + f' {"reuse/system":>13s}')
    for model in MODELS:
        reuse, system = peaks['reuse', model], peaks['system', model]
        print(f'{model:8s} {reuse:8.0f} {system:8.0f} {reuse / system:13.2f}')


def profile_growth(sizes, threads: int, mode: str = 'training', top: int = 15) -> None:
    """Print VSSD-T's ops in ``mode`` by self CPU time per megapixel at each size, the fastest
    growing first (ops above 1 % of the largest size's step)."""
    worker = Worker('reuse', threads)
    try:
        per_mp = {shape: {op: s / (shape[0] * shape[1] / 1e6) for op, s in
                          worker.ask('vssd_t', shape, mode, profile=True)['ops'].items()}
                  for shape in sizes}
    finally:
        worker.close()
    small, large = per_mp[sizes[0]], per_mp[sizes[-1]]
    total = sum(large.values())
    rows = sorted((op for op in large if large[op] > 0.01 * total),
                  key=lambda op: large[op] - small.get(op, 0.), reverse=True)[:top]
    print(f'VSSD-T {mode}, self CPU seconds per megapixel (heap: reuse)')
    print(f'{"op":40s} ' + ' '.join(f'{h}x{w:<6d}' for h, w in sizes) + ' growth')
    for op in rows + ['total']:
        values = [sum(p.values()) if op == 'total' else p.get(op, 0.) for p in per_mp.values()]
        print(f'{op[:40]:40s} ' + ' '.join(f'{v:10.3f}' for v in values)
              + f' {values[-1] - values[0]:+.3f}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=size, nargs='+',
                        default=[(512, 512), (800, 1344), (1024, 1792)])
    parser.add_argument('--rounds', type=positive_int, default=3)
    parser.add_argument('--threads', type=positive_int, default=2)
    parser.add_argument('--memory-size', type=size, default=(800, 1344))
    parser.add_argument('--profile', choices=MODES,
                        help='profile VSSD-T\'s training step or inference at each size instead')
    args = parser.parse_args(argv)
    if args.profile:
        return profile_growth(args.sizes, args.threads, args.profile)
    times, allocators = time_rounds(args.sizes, args.rounds, args.threads)
    peaks = peak_memory(args.memory_size, args.threads)
    report(times, peaks, args.sizes, args.memory_size, args.threads, allocators)


if __name__ == '__main__':
    main()
