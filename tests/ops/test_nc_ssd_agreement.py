"""One NC-SSD backend decision per multi-rank job: two gloo processes on the CPU, the kernels in
Triton's interpreter, rank 1's kernels made to fail or unable to run (tests/fixtures/
nc_ssd_agreement_rank.py runs each rank; one pair of processes serves every test here).

The outputs are compared with ``nc_ssd_reference`` (the spec) called in the same process.
"""
import json
import os
import socket
import subprocess
import sys

import pytest

from vssd_mm.ops.nc_ssd import dispatch

from conftest import FIXTURES, REPO

pytestmark = pytest.mark.skipif(not dispatch.triton_available(),
                                reason='the kernels run in Triton\'s interpreter')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    """The two ranks' reports (rank order)."""
    out = tmp_path_factory.mktemp('agreement')
    env = {**os.environ, 'TRITON_INTERPRET': '1', 'OMP_NUM_THREADS': '1', 'WORLD_SIZE': '2',
           'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(_free_port())}
    env.pop(dispatch.BACKEND_ENV, None)
    script = FIXTURES / 'nc_ssd_agreement_rank.py'
    procs = [subprocess.Popen([sys.executable, str(script), str(out)], cwd=REPO,
                              env={**env, 'RANK': str(rank)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    for rank, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0, f'rank {rank} exited {proc.returncode}\n{log[-4000:]}'
    return [json.loads((out / f'rank{rank}.json').read_text()) for rank in (0, 1)]


def test_a_kernel_failure_on_one_rank_moves_every_rank_to_the_reference(ranks):
    first = [r['first_failure'] for r in ranks]
    reason = ('rank 1 of 2: the Triton kernels failed on cpu (Triton interpreter) '
              '(RuntimeError: PTXAS error: simulated failure of rank 1)')
    for report in first:
        assert report['given_up'] == reason
        assert report['max_diffs'] == [0.0] * 4  # y and gradients, both calls: the reference's
    assert first[0]['kernel_calls'] == [1, 1]  # rank 0's kernels ran once, then not again
    assert first[1]['kernel_calls'] == [1, 1]
    # rank 0 says it once, with rank 1's reason; rank 1 did not go it alone
    assert len(first[0]['warnings']) == 1, first[0]['warnings']
    message = first[0]['warnings'][0]
    assert message.startswith(f'nc_ssd: {reason}; every rank of this job uses the PyTorch '
                              'reference'), message
    assert 'more detail' not in message and 'VSSD_MM_NC_SSD_BACKEND=torch' in message
    assert first[1]['warnings'] == []


def test_without_failures_every_rank_keeps_the_kernels(ranks):
    for report in (r['all_work'] for r in ranks):
        assert report['given_up'] is None and report['warnings'] == []
        assert report['kernel_calls'] == [1, 2]
        assert max(report['max_diffs']) < 1e-4  # the kernels' float32 sums, another order


def test_a_rank_that_cannot_run_the_kernels_moves_every_rank(ranks):
    reason = ('rank 1 of 2: the Triton kernels needs a GPU of compute capability 8.0 or newer; '
              'this is Tesla T4 (sm_75)')
    for report in (r['cannot_run'] for r in ranks):
        assert report['given_up'] == reason and report['max_diffs'] == [0.0, 0.0]
    assert ranks[0]['cannot_run']['kernel_calls'] == [1, 1]
    assert ranks[1]['cannot_run']['kernel_calls'] == [0, 0]
    assert len(ranks[0]['cannot_run']['warnings']) == 1
    assert ranks[0]['cannot_run']['warnings'][0].startswith(f'nc_ssd: {reason}; every rank')
    assert ranks[1]['cannot_run']['warnings'] == []


def test_a_failure_after_the_decision_falls_back_on_its_rank_alone_and_says_so(ranks):
    zero, one = (r['later_failure'] for r in ranks)
    assert zero['given_up'] is None and zero['warnings'] == [] and zero['kernel_calls'] == [1, 2]
    assert one['given_up'].endswith('(RuntimeError: a new shape failed on rank 1)')
    assert one['max_diffs'] == [0.0, 0.0] and one['kernel_calls'] == [1, 1]
    assert len(one['warnings']) == 1
    assert ('for the rest of this process on rank 1 of 2; the other ranks keep the kernels'
            in one['warnings'][0])


def test_fake_tensors_leave_the_decision_to_the_real_call(ranks):
    # rank 0 alone ran the op on fake tensors first: no collective started there
    assert [r['pending_after_fake_call'] for r in ranks] == [True, True]
    assert ranks[0]['world_size'] == 2
