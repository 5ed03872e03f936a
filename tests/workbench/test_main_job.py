"""The main job's training-step benchmark (benchmarks/main_job_speed.py): what the GPU call runs,
exercised here on the CPU at a tiny size."""
import math

import pytest

from conftest import tool_main
from benchmarks.support.main_job import TrainRun, ratio_table, train_run


def _run(backbone, precision, ms, peak, backend='-'):
    return TrainRun('mask_rcnn', backbone, precision, backend, 2, 800, 1344, 30, 2000 / ms, ms,
                    peak, True, None, 1.0, 'GPU')


def test_ratios_are_vssd_over_swin_of_the_same_task_and_precision():
    runs = [_run('Swin-T', 'fp16', 200., 1000.), _run('VSSD-T', 'fp16', 230., 900., 'triton'),
            _run('Swin-T', 'fp32', 400., 2000.), _run('VSSD-T', 'fp32', 380., 2100., 'torch')]
    assert ratio_table(runs) == [
        'mask_rcnn fp16 NC-SSD triton: step time 1.15x Swin-T, peak memory 0.90x',
        'mask_rcnn fp32 NC-SSD torch : step time 0.95x Swin-T, peak memory 1.05x']


def test_a_vssd_mask_rcnn_trains_from_random_init_with_finite_losses():
    run, profile = train_run('mask_rcnn', 'VSSD-T', 'fp32', (64, 96), batch_size=1, iterations=2, timed=1, nc_ssd_backend='torch',
                             device='cpu', profile_steps=1)
    assert (run.backbone, run.precision, run.nc_ssd_backend) == ('VSSD-T', 'fp32', 'torch')
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
