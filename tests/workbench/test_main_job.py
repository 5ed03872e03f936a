"""The main job's training-step benchmark (benchmarks/main_job_speed.py): what the GPU call runs,
exercised here on the CPU at a tiny size."""
import math
import warnings

import pytest
import torch

from conftest import tool_main
from benchmarks.support.main_job import (TrainRun, fallback_during, nc_ssd_fallbacks,
                                         ratio_table, train_run)
from vssd_mm.ops import nc_ssd
from vssd_mm.ops.nc_ssd import dispatch, kernel_steps, launch


@pytest.fixture
def auto_picks_kernels(monkeypatch):
    """Auto mode as on a GPU: CPU tensors go to the kernels (Triton's interpreter)."""
    monkeypatch.delenv(dispatch.BACKEND_ENV, raising=False)
    monkeypatch.setenv('TRITON_INTERPRET', '1')  # CPU tensors are the kernels' on a GPU machine too
    monkeypatch.setattr(dispatch, 'auto_runs_kernels', lambda x: True)
    dispatch.reset()
    yield
    dispatch.reset()


def _run(backbone, precision, ms, peak, backend='-'):
    return TrainRun('mask_rcnn', backbone, precision, backend, 2, 800, 1344, 30, 2000 / ms, ms,
                    peak, True, None, 1.0, 'GPU')


def test_ratios_are_vssd_over_swin_of_the_same_task_and_precision():
    runs = [_run('Swin-T', 'fp16', 200., 1000.), _run('VSSD-T', 'fp16', 230., 900., 'triton'),
            _run('Swin-T', 'fp32', 400., 2000.), _run('VSSD-T', 'fp32', 380., 2100., 'torch')]
    assert ratio_table(runs) == [
        'mask_rcnn fp16 NC-SSD triton: step time 1.15x Swin-T, peak memory 0.90x',
        'mask_rcnn fp32 NC-SSD torch : step time 0.95x Swin-T, peak memory 1.05x']


def test_a_vssd_mask_rcnn_trains_from_random_init_with_finite_losses(auto_picks_kernels,
                                                                     monkeypatch):
    """In auto mode, with every NC-SSD call one the kernels cannot serve (tiles past the measured
    ones): the run trains on the reference and records each routed call, profiled ones too."""
    monkeypatch.setattr(launch, 'TUNED_TILE', 8)  # VSSD-T's d_state / headdim of 64: routed
    attempts = []
    for name in ('kernel_forward', 'kernel_backward'):
        step = getattr(kernel_steps, name)
        monkeypatch.setattr(kernel_steps, name,
                            lambda *a, step=step: attempts.append(1) or step(*a))
    with pytest.warns(RuntimeWarning, match='this call runs the PyTorch reference') as record:
        run, profile = train_run('mask_rcnn', 'VSSD-T', 'fp32', (64, 96), batch_size=1,
                                 iterations=2, timed=1, nc_ssd_backend='auto', device='cpu',
                                 profile_steps=1)
    assert (run.backbone, run.precision, run.nc_ssd_backend) == ('VSSD-T', 'fp32', 'auto')
    warned = [str(w.message) for w in record if 'PyTorch reference' in str(w.message)]
    assert len(warned) == 1 and len(attempts) > 0
    reason = warned[0].split('nc_ssd: ')[1].split('; this call')[0]
    assert run.nc_ssd_fallback == f'routed tile x{len(attempts)}: {reason}'
    assert ratio_table([_run('Swin-T', 'fp32', 400., 2000.), run])[0].endswith(
        '(NC-SSD fell back, see above)')
    assert run.losses_finite and run.first_nonfinite is None and math.isfinite(run.last_loss)
    assert run.images_per_s == pytest.approx(1000. / run.ms_per_iter)
    assert math.isnan(run.peak_memory_mib) and run.device == 'CPU'
    rows = profile.splitlines()
    assert rows[0].split()[:2] == ['share', 'ms/step'] and len(rows) > 5
    assert sum(float(row.split('%')[0]) for row in rows[1:]) <= 100.5


@pytest.mark.parametrize('args, message', [
    (['--device', 'cpu'], 'AMP (fp16, bf16) is measured on CUDA only'),
    (['--device', 'cpu', '--precisions', 'fp32'], 'Triton NC-SSD kernels run on CUDA only'),
    (['--iters', '2', '--timed', '5'], '--timed 5 is more than --iters 2'),
    (['--iters', '0'], 'must be >= 1, got 0'),
])
def test_unusable_options_are_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        tool_main('benchmarks.main_job_speed')(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_give_up_and_routed_calls_are_recorded_as_dispatch_warned_them(auto_picks_kernels,
                                                                         monkeypatch):
    device = 'cuda' if torch.cuda.is_available() else 'cpu'  # the kernels' tensors

    def call(dstate):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 12, 2, 8, generator=g)
        B = torch.randn(1, 12, 1, dstate, generator=g)
        w = torch.rand(1, 12, 2, generator=g)
        return nc_ssd(*(t.to(device) for t in (x, w, B, B.clone())))

    before = nc_ssd_fallbacks()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        call(16)                                  # served by the kernels
    assert fallback_during(before, nc_ssd_fallbacks()) == 'none'
    with pytest.warns(RuntimeWarning) as routed:
        call(65)                                  # d_state past the measured tiles
        call(65)
    between = nc_ssd_fallbacks()

    def broken(self):
        raise RuntimeError('simulated')
    monkeypatch.setattr(launch.Launch, '__call__', broken)
    with pytest.warns(RuntimeWarning) as gave_up:
        call(16)
    reason = str(routed[0].message).split('nc_ssd: ')[1].split('; this call')[0]
    given_up = str(gave_up[0].message).split('nc_ssd: ')[1].split('; using the')[0]
    assert given_up.startswith('the Triton kernels failed on ')
    assert given_up.endswith(' (RuntimeError: simulated)')
    assert fallback_during(before, nc_ssd_fallbacks()) == (
        f'gave up: {given_up}; routed tile x2: {reason}')
    assert fallback_during(between, nc_ssd_fallbacks()) == f'gave up: {given_up}'
