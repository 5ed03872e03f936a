"""The launch-setting sweep (benchmarks/support/tuning.py) without a GPU: candidates really reach
the launches, the table is restored, the winner rule, and a whole sweep in the interpreter with
a stand-in timer."""
import pytest
import torch
import triton.testing

from benchmarks.support import tuning
from vssd_mm.ops.nc_ssd import launch
from vssd_mm.ops.nc_ssd.launch import LaunchSettings

# the interpreter on CPU (tests/conftest.py), the compiled kernels on a GPU
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'


@pytest.mark.parametrize('kernel', tuning.KERNELS)
def test_candidate_reaches_the_launches_and_table_is_restored(kernel):
    tensors = tuning.operands(1, 40, 2, torch.float16, device='cpu')
    before = launch.SETTINGS[kernel]['half']
    trial = LaunchSettings(32, num_warps=4, num_stages=3)
    with tuning.trying(kernel, 'half', trial):
        launches = tuning.build(kernel, tensors)
    assert launch.SETTINGS[kernel]['half'] == before
    assert len(launches) == (2 if kernel == 'bwd_bc' else 1)
    assert all(la.name == kernel and la.settings == trial for la in launches)
    assert all(la.constexprs['BLOCK_L'] == 32 for la in launches)


def test_bytes_moved_counts_each_tensor_once():
    tensors = tuning.operands(2, 50, 2, torch.float16, device='cpu')
    kv_launch = tuning.build('kv_reduce', tensors)[0]
    partial = next(a for a in kv_launch.args if isinstance(a, torch.Tensor) and a.dim() == 5)
    expected = (2 * 50 * 2 * 64 * 2 + 2 * 50 * 64 * 2 + 2 * 50 * 2 * 4   # x, B (fp16), w (fp32)
                + partial.numel() * 4)
    assert tuning.bytes_moved([kv_launch]) == expected


def test_best_skips_spills_and_failures_and_sums_over_shapes():
    a, b, c = (LaunchSettings(t, 8, 2) for t in (32, 64, 128))
    rows = [dict(kernel='apply', operand_class='half', shape='s1', settings=a, ms=1.0, spills=0),
            dict(kernel='apply', operand_class='half', shape='s2', settings=a, ms=1.0, spills=0),
            dict(kernel='apply', operand_class='half', shape='s1', settings=b, ms=0.5, spills=0),
            dict(kernel='apply', operand_class='half', shape='s2', settings=b, ms=1.6, spills=0),
            dict(kernel='apply', operand_class='half', shape='s1', settings=c, ms=0.1, spills=4),
            dict(kernel='apply', operand_class='half', shape='s2', settings=c, ms=0.1, spills=0)]
    assert tuning.best(rows) == {('apply', 'half'): a}
    rows[2:4] = [dict(rows[2], ms=0.4), dict(rows[3], error='out of resources')]
    assert tuning.best(rows) == {('apply', 'half'): a}


def test_sweep_runs_every_candidate_in_the_interpreter(monkeypatch):
    calls = []

    def one_run(fn, warmup, rep):  # stands in for the timer
        fn()
        calls.append(1)
        return 0.5
    monkeypatch.setattr(triton.testing, 'do_bench', one_run)
    rows = tuning.measure('apply', 'tf32x3', shapes=[('tiny', 1, 20, 2)], device=DEVICE)
    assert [r['settings'] for r in rows] == tuning.candidates('tf32x3')
    assert len(calls) == len(rows) and all(r['ms'] == 0.5 and r['gbps'] > 0 for r in rows)
