"""vssd_mm.allocator: the tools' processes reuse large blocks when they compute on the CPU (no
page faults on the second allocation of a 64 MiB activation), not when the model runs on CUDA;
importing vssd_mm changes nothing; VSSD_MM_MALLOC=system keeps glibc's defaults; the tools log
the decision once."""
import os
import platform
import subprocess
import sys

import pytest
import torch

from conftest import FIXTURES, run_tool

pytestmark = pytest.mark.skipif(
    platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
    reason='mallopt is glibc\'s')

PAGES_PER_BLOCK = 64 * 2 ** 20 // 4096

# prints what reuse_large_blocks did (or 'not-called') and the page faults of one 64 MiB
# allocation after warm-up ones (glibc places the first few memaligned blocks above the freed ones
# before it reuses them: on glibc 2.36, six). 'call' / 'call-cuda': as on a machine without /
# with CUDA (what torch.cuda.is_available answers there)
SCRIPT = '''
import resource, sys, torch
import vssd_mm, vssd_mm.ops  # what a user's own process imports
if sys.argv[1].startswith('call'):
    from vssd_mm.allocator import reuse_large_blocks
    torch.cuda.is_available = lambda: sys.argv[1] == 'call-cuda'
    print(reuse_large_blocks())
else:
    print('not-called')
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(12):
    block = torch.ones(16 * 2 ** 20); del block  # 64 MiB, touched
before = faults()
for _ in range(3):
    block = torch.ones(16 * 2 ** 20); del block
print((faults() - before) // 3)
'''


def _faults_per_block(call: bool, cuda: bool = False, **env):
    mode = ('call-cuda' if cuda else 'call') if call else 'import'
    proc = subprocess.run([sys.executable, '-c', SCRIPT, mode],
                          capture_output=True, text=True, env={**os.environ, **env}, check=True)
    outcome, faults = proc.stdout.split()
    return outcome, int(faults)


def test_reused_blocks_are_not_page_faulted_again():
    outcome, faults = _faults_per_block(call=True)
    assert outcome == 'reuse'
    assert faults < PAGES_PER_BLOCK // 20, faults


def test_importing_vssd_mm_keeps_the_system_behaviour():
    outcome, faults = _faults_per_block(call=False)
    assert outcome == 'not-called'
    assert faults > PAGES_PER_BLOCK * 0.9, faults  # glibc maps the block fresh every time


def test_a_cuda_run_keeps_the_system_behaviour():
    outcome, faults = _faults_per_block(call=True, cuda=True)
    assert outcome == 'cuda'
    assert faults > PAGES_PER_BLOCK * 0.9, faults


def test_environment_variable_turns_it_off():
    outcome, faults = _faults_per_block(call=True, VSSD_MM_MALLOC='system')
    assert outcome == 'system'
    assert faults > PAGES_PER_BLOCK * 0.9, faults


@pytest.mark.parametrize('script', ['tools/train.py', 'tools/test.py',
                                    'benchmarks/model_speed.py', 'benchmarks/main_job_speed.py'])
def test_tools_set_it_when_run_as_programs(script):
    """The tools call it in their ``__main__`` block only (so a test or notebook calling their
    ``main`` keeps its own process's behaviour)."""
    from conftest import REPO
    source = (REPO / script).read_text()
    main_block = source.split("if __name__ == '__main__':", 1)[1]
    assert 'reuse_large_blocks()' in main_block
    assert 'reuse_large_blocks()' not in source.split("if __name__ == '__main__':", 1)[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU run's line")
def test_a_tool_logs_where_it_applies_once(tmp_path):
    proc = run_tool('train.py', FIXTURES / 'toy_regression_config.py', '--work-dir', 'work',
                    cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert log.count("heap: large blocks reused, not mapped fresh each step (a CPU run; "
                     "VSSD_MM_MALLOC=system keeps glibc's defaults)") == 1, log[-2000:]
