"""benchmarks/op_speed.py: its baseline computes the same op, and the tool prints its table."""
import torch

from vssd_mm.ops import nc_ssd_reference
from benchmarks.support.nc_ssd_timing import make_inputs, official_formulation, run


def test_official_formulation_is_the_same_op():
    x, w, B, C, D = make_inputs(2, 50, 4, torch.float32, 'cpu')
    torch.testing.assert_close(official_formulation(x, w, B, C, D),
                               nc_ssd_reference(x, w, B, C, D), rtol=1e-4, atol=1e-4)


def test_run_measures_every_implementation_and_pass():
    rows = run(torch.float32, 'cpu', repeats=1, shapes=[('cls', '64x64', 1, 1, 256, 2)])
    assert {(r['impl'], r['pass_']) for r in rows} == {
        (i, p) for i in ('official', 'reference') for p in ('fwd', 'fwd+bwd')}
    assert all(r['seconds'] > 0 and r['gbps'] > 0 for r in rows)


def test_tool_prints_ratio_table(tool):
    out = tool('benchmarks.op_speed', '--scale-batch', '0.01', '--repeats', '1', '--dtype',
               'float32', '--device', 'cpu', timeout=300).stdout
    assert 'device: CPU (relative timings only)' in out
    det_rows = [line for line in out.splitlines() if line.startswith('det ')]
    assert len(det_rows) == 6 and all(len(line.split()) == 9 for line in det_rows)
