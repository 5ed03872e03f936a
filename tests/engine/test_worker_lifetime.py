"""Data-loader workers end with the process that runs them, however it ends (SIGKILL included),
and mmengine's worker seeding is unchanged."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from conftest import FIXTURES, REPO

linux_only = pytest.mark.skipif(not sys.platform.startswith('linux'),
                                reason='PR_SET_PDEATHSIG and /proc are Linux features')


class _RandomItems(torch.utils.data.Dataset):
    """Items drawn in the worker from the three generators mmengine seeds there."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        import random

        import numpy as np
        return torch.tensor([random.random(), np.random.rand(), torch.rand(()).item()])


def _loader_cfg(**extra):
    return dict(dataset=_RandomItems(), batch_size=2, num_workers=1,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='default_collate'), **extra)


def _record_worker_id(worker_id, offset):
    torch.manual_seed(offset + worker_id)


@pytest.mark.parametrize('own_init', [False, True])
def test_workers_are_seeded_exactly_as_mmengine_seeds_them(own_init):
    from mmengine.runner import Runner

    from vssd_mm.engine.checked_runner import CheckedRunner
    from vssd_mm.engine.worker_lifetime import _init_worker
    extra = dict(worker_init_fn=dict(type=_record_worker_id, offset=7)) if own_init else {}
    ours = CheckedRunner.build_dataloader(_loader_cfg(**extra), seed=123)
    theirs = Runner.build_dataloader(_loader_cfg(**extra), seed=123)
    assert ours.worker_init_fn.func is _init_worker
    assert ours.worker_init_fn.keywords['parent_pid'] == os.getpid()
    batches = []
    for loader in (ours, theirs):
        torch.manual_seed(0)  # PyTorch's own worker seed is drawn from this process's generator
        batches.append(torch.cat(list(loader)))
    assert torch.equal(batches[0], batches[1])
    without_workers = CheckedRunner.build_dataloader({**_loader_cfg(), 'num_workers': 0}, seed=1)
    assert without_workers.worker_init_fn.func is not _init_worker


def test_workers_of_a_forkserver_run():
    # a forkserver's child has the forkserver as its parent, not this process: it watches this
    # process instead (before: it took the other parent for this process's death and exited)
    from vssd_mm.engine.checked_runner import CheckedRunner
    loader = CheckedRunner.build_dataloader(_loader_cfg(multiprocessing_context='forkserver'),
                                            seed=123)
    assert [batch.shape for batch in loader] == [(2, 3), (2, 3)]


# A dataset whose batches are mostly pickled (a string is not moved to shared memory as a tensor
# is) and large: a few of them fill the worker's result pipe, as image batches do.
_BIG_ITEMS = '''
from mmengine.registry import DATASETS
from toy_regression import ToyRegressionDataset


@DATASETS.register_module()
class BigItemsDataset(ToyRegressionDataset):
    def __getitem__(self, index):
        return dict(super().__getitem__(index), padding='x' * 100_000)
'''


def _session_processes(sid: int) -> list:
    """(pid, state, command) of the live (not zombie) processes of session ``sid``."""
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            cmdline = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()[:120]
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(')') + 2:].split()  # after "pid (comm) "
        state, ppid, session = fields[0], int(fields[1]), int(fields[3])
        if session == sid and state != 'Z':
            found.append((int(entry.name), ppid, state, cmdline))
    return found


def test_a_worker_of_another_parent_ends_within_seconds_of_its_servers_death():
    # the watchdog of a forkserver's worker: it runs while the serving process runs, and ends
    # within WATCH_INTERVAL of its death (a process that is not its parent here)
    server = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    worker = subprocess.Popen(
        [sys.executable, '-c', 'import time\n'
         'from vssd_mm.engine.worker_lifetime import die_with_parent\n'
         f'die_with_parent({server.pid}); print("watching", flush=True); time.sleep(120)'],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == 'watching'
        time.sleep(1.5)
        assert worker.poll() is None  # the server still runs
        server.kill()
        server.wait()
        assert worker.wait(timeout=5) == 1
    finally:
        for proc in (server, worker):
            proc.kill()
            proc.wait()
        worker.stdout.close()


@linux_only
def test_a_killed_training_leaves_no_worker_behind(tmp_path):
    (tmp_path / 'big_items.py').write_text(textwrap.dedent(_BIG_ITEMS))
    (tmp_path / 'config.py').write_text(textwrap.dedent(f'''
        _base_ = '{FIXTURES / 'toy_regression_config.py'}'
        custom_imports = dict(imports=['toy_regression', 'big_items'])
        train_dataloader = dict(num_workers=1, persistent_workers=True,
                                dataset=dict(type='BigItemsDataset', num_samples=100000))
        train_cfg = dict(max_epochs=1)
        default_hooks = dict(checkpoint=dict(interval=1000000), logger=dict(interval=1000000))
        '''))
    env = {**os.environ, 'OMP_NUM_THREADS': '1',
           'PYTHONPATH': os.pathsep.join([str(FIXTURES), str(tmp_path)])}
    proc = subprocess.Popen([sys.executable, str(REPO / 'tools' / 'train.py'),
                             str(tmp_path / 'config.py'), '--work-dir', str(tmp_path / 'work')],
                            cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not any(ppid == proc.pid for _, ppid, _, _ in _session_processes(proc.pid)):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, 'no data-loader worker started'
            time.sleep(0.1)
        time.sleep(2)  # the worker fills its result queue while the training runs
        assert proc.poll() is None, 'the training ended before it could be killed'
        proc.kill()  # SIGKILL, as the OOM killer sends it
        proc.wait()
        time.sleep(1)
        assert _session_processes(proc.pid) == []
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # this test's own process group: what it left
        except ProcessLookupError:
            pass
        proc.stderr.close()
