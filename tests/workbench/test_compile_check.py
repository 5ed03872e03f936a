"""The ahead-of-time kernel check (benchmarks/check_kernels.py): every Triton NC-SSD specialization
VSSD launches compiles for sm_80 and sm_90a with no spills, and the check fails when a launch
setting would spill. The compiling tests run in a subprocess: the kernels must be decorated for
compilation, and this process has TRITON_INTERPRET=1 (tests/conftest.py) when there is no GPU."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.support import compile_check, kernel_report
from benchmarks.support.kernel_report import ARCHES, KernelReport, parse_ptxas_log, resident_blocks

REPO = Path(__file__).resolve().parents[2]
PROBLEM = compile_check.toolchain_problem()
needs_toolchain = pytest.mark.skipif(PROBLEM is not None, reason=f'cannot compile ahead of time '
                                     f'here: {PROBLEM}')

PTXAS_LOG = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'bwd_x_kernel' for 'sm_90a'
ptxas info    : Function properties for bwd_x_kernel
    16 bytes stack frame, 24 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 16 bytes cumulative stack size
"""


def test_ptxas_report_is_parsed():
    assert parse_ptxas_log(PTXAS_LOG) == (255, 24, 12)
    with pytest.raises(ValueError, match='unrecognised ptxas report'):
        parse_ptxas_log('ptxas info    : 0 bytes gmem')


@pytest.mark.parametrize('arch, registers, shared, warps, blocks', [
    (90, 255, 0, 4, 2),           # 255 regs -> 8192 per warp -> 8 warps per SM
    (90, 128, 0, 4, 4),           # 4096 per warp -> 16 warps
    (80, 96, 20 * 1024, 4, 5),    # 3072 per warp -> 21 warps -> 5 blocks; shared allows 7
    (90, 64, 100 * 1024, 4, 2),   # shared: 228 KiB / (100 + 1) KiB
    (86, 32, 0, 8, 6),            # the warp limit: 48 / 8
])
def test_resident_blocks_follow_the_occupancy_rules(arch, registers, shared, warps, blocks):
    assert resident_blocks(ARCHES[arch], registers, shared, warps) == blocks


def _report(**fields):
    base = dict(kernel='apply', arch='sm_90', dtype='fp16', variant='D', block_l=64, num_warps=4,
                num_stages=2, registers=96, spill_stores=0, spill_loads=0, shared_bytes=20480,
                resident_blocks=5, resident_warps=20)
    return KernelReport(**{**base, **fields})


def test_report_problems():
    assert _report().problems() == []
    assert 'spills 8 B stores' in _report(spill_stores=8, spill_loads=4).problems()[0]
    assert 'shared memory' in _report(shared_bytes=kernel_report.SHARED_LIMIT + 1).problems()[0]
    assert 'resident block' in _report(resident_blocks=1, resident_warps=4).problems()[0]
    assert _report(resident_blocks=1, resident_warps=8).problems() == []  # 8 warps suffice
    assert _report(error='CompilationError: boom').problems() == ['CompilationError: boom']


def _run_python(code: str, timeout: float = 600):
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


@needs_toolchain
def test_one_specialization_per_kernel_flag_and_dtype():
    """L, batch strides, split counts and the two operand layouts do not multiply the compiled
    variants: the check covers every image size with one kernel per (kernel, dtype, flags)."""
    done = _run_python('\n'.join([
        'import json',
        'from benchmarks.support import compile_check',
        'from vssd_mm.ops.nc_ssd import launch',
        'specs = compile_check.vssd_specializations()',
        'print(json.dumps([[s.kernel, s.dtype, s.variant] for s in specs]))',
        'print(json.dumps(sorted(launch.SETTINGS)))',
    ]))
    assert done.returncode == 0, done.stderr[-3000:]
    keys, kernels = map(json.loads, done.stdout.strip().splitlines())
    assert len(keys) == len({tuple(k) for k in keys})
    # 2 flag values x (fp16, bf16, fp32 with TF32, fp32 exact) per kernel
    assert len(keys) == len(kernels) * 2 * 4
    assert {k[0] for k in keys} == set(kernels)


@needs_toolchain
def test_every_kernel_compiles_for_sm80_and_sm90_without_spills(tmp_path, tool):
    out = tmp_path / 'kernels.json'
    # the tool itself drops TRITON_INTERPRET, which this process may have set
    proc = tool('benchmarks.check_kernels', '--arch', '80', '90', '--json', out, timeout=900)
    rows = json.loads(out.read_text())
    assert {r['arch'] for r in rows} == {'sm_80', 'sm_90'}
    assert {r['dtype'] for r in rows} == {'fp16', 'bf16', 'fp32'}
    for row in rows:
        assert set(row) >= {'kernel', 'arch', 'dtype', 'variant', 'num_warps', 'num_stages',
                            'registers', 'spill_stores', 'spill_loads', 'shared_bytes', 'error'}
        assert row['error'] is None and row['spill_stores'] == row['spill_loads'] == 0, row
        assert 0 < row['registers'] <= 255 and row['shared_bytes'] <= kernel_report.SHARED_LIMIT
        assert row['resident_warps'] >= 8, row
    assert '0 failed' in proc.stdout


@needs_toolchain
def test_check_fails_on_the_settings_the_dispatcher_would_use(tmp_path):
    """The check compiles what launch.launch_settings returns: a setting that spills fails it."""
    out = tmp_path / 'apply.json'
    done = _run_python('\n'.join([
        'import runpy, sys',
        'from vssd_mm.ops.nc_ssd import launch',
        'original = launch.launch_settings',
        'launch.launch_settings = lambda kernel, *args: (launch.LaunchSettings(256, 4, 2) '
        '    if kernel == "apply" else original(kernel, *args))',
        f'sys.argv = ["benchmarks.check_kernels", "--arch", "90", "--dtype", "fp32", '
        f'"--kernel", "apply", "--json", {str(out)!r}]',
        'runpy.run_module("benchmarks.check_kernels", run_name="__main__")',
    ]))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert rows and {r['kernel'] for r in rows} == {'apply'}
    assert all((r['block_l'], r['num_warps'], r['num_stages']) == (256, 4, 2) for r in rows)
    spilling = [r for r in rows if r['spill_stores']]
    assert spilling, rows  # a (256, 64) fp32 tile per 4 warps cannot stay in registers
    assert 'spills' in done.stdout and f'{len(spilling)} failed' in done.stdout
