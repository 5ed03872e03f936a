"""benchmarks/model_speed.py: its table, record and plot; AMP detection training; compiled and
ONNX Runtime backbones in the same table; per-row CPU peak memory."""
import json
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
MICRO_CLS = REPO / 'configs' / 'mmpretrain' / 'vssd_m_8xb128_in1k.py'


def test_benchmark_writes_a_table_json_and_png(tool, tmp_path):
    proc = tool('benchmarks.model_speed', MICRO_CLS, '--shape', '64', '64', '--batch-size', '2',
                '--device', 'cpu', '--amp', 'off', '--warmup', '1', '--iters', '2',
                '--out-dir', tmp_path)
    assert 'inference' in proc.stdout and 'training' in proc.stdout
    assert len((proc.stdout + proc.stderr).splitlines()) < 20  # no per-parameter INFO reports
    (record_path, ) = tmp_path.glob('vssd_m_8xb128_in1k_*.json')
    record = json.loads(record_path.read_text())
    assert [r['mode'] for r in record['rows']] == ['inference', 'training']
    assert all(r['images_per_s'] > 0 and r['peak_memory_mib'] > 0 for r in record['rows'])
    assert all(r['precision'] == 'fp32' and r['batch_size'] == 2 for r in record['rows'])
    png = cv2.imread(str(record_path.with_suffix('.png')))
    assert png is not None and png.shape[0] > 100


def test_benchmark_measures_detection_training_with_amp(tmp_path):
    """AMP rows exist (bf16 autocast on CPU) and a Mask R-CNN train_step runs on synthetic data."""
    import vssd_mm  # noqa: F401
    from mmengine.config import Config

    from benchmarks.support.throughput import measure
    cfg = Config.fromfile(str(REPO / 'configs' / 'mmdet' / 'mask_rcnn_vssd_m_1x.py'))
    rows = measure(cfg, (96, 128), 1, 'cpu', amp=False, modes=('training', ), warmup=0,
                   iters=1)
    assert rows[0].mode == 'training' and rows[0].images_per_s > 0
    cls = Config.fromfile(str(MICRO_CLS))
    rows = measure(cls, (64, 64), 2, 'cpu', amp=True, modes=('inference', ), warmup=0, iters=1)
    assert rows[0].precision == 'bf16 autocast'


SHALLOW_MICRO = ("model = dict(backbone=dict(arch=dict(_delete_=True, embed_dim=48, "
                 "depths=(1, 1, 1, 1), num_heads=(2, 4, 8, 16), d_state=48)))\n")


def test_benchmark_adds_compiled_backbone_rows_to_the_same_table(tmp_path, capsys):
    from conftest import tool_main

    # one block per stage; AOTAutograd's graphs run eagerly (aot_eager): the row's path through
    # the tool without Inductor's C++ compilation (40-90 s cold on 2 cores; docs/benchmarks.md
    # has Inductor's rows)
    config = tmp_path / 'vssd_m_8xb128_in1k.py'
    config.write_text(f"_base_ = '{MICRO_CLS}'\n" + SHALLOW_MICRO)
    tool_main('benchmarks.model_speed')([
        str(config), '--shape', '64', '64', '--batch-size', '2', '--device', 'cpu',
        '--amp', 'off', '--modes', 'inference', '--warmup', '1', '--iters', '1', '--compile',
        '--compile-backend', 'aot_eager', '--out-dir', str(tmp_path)])
    table = {line.split()[2]: line.split() for line in capsys.readouterr().out.splitlines()
             if line.startswith('inference')}
    (record_path, ) = tmp_path.glob('vssd_m_8xb128_in1k_*.json')
    record = json.loads(record_path.read_text())
    assert record['compile_backend'] == 'aot_eager'
    rows = record['rows']
    assert [(r['backbone'], r['mode']) for r in rows] == [('eager', 'inference'),
                                                          ('compile', 'inference')]
    ms = {r['backbone']: r['ms_per_batch'] for r in rows}
    assert table['eager'][5] == '1.00'  # the 'x eager' column
    assert abs(float(table['compile'][5]) - ms['compile'] / ms['eager']) < 0.01


def test_unknown_compile_backend_is_one_line_before_any_work(tmp_path, capsys):
    import pytest

    from conftest import tool_main
    with pytest.raises(SystemExit) as stop:
        tool_main('benchmarks.model_speed')([str(MICRO_CLS), '--compile', '--compile-backend',
                                             'inductr', '--out-dir', str(tmp_path / 'out')])
    assert stop.value.code == 2
    (line, ) = [line for line in capsys.readouterr().err.splitlines() if 'error:' in line]
    assert "--compile-backend 'inductr': choose one of" in line and 'inductor' in line
    assert not (tmp_path / 'out').exists()


def test_onnxruntime_backbone_gives_the_models_predictions(tmp_path):
    """benchmark.py --onnxruntime (and benchmark_deploy.py) swap in the backbone exported to ONNX:
    the classifier's test_step predicts what it predicts eagerly, at a size other than the traced
    one; training is refused."""
    import pytest

    import vssd_mm  # noqa: F401
    from mmengine.config import Config

    from benchmarks.support.batches import synthetic_batch
    from benchmarks.support.onnx_backbone import OnnxRuntimeBackbone
    from benchmarks.support.throughput import _swap_in_backbone, check_backbone_path
    from vssd_mm.analysis.model_builder import build_model
    torch.manual_seed(0)
    # one block per stage: every block exports alike, in a third of micro's time
    config = tmp_path / 'shallow.py'
    config.write_text(f"_base_ = '{MICRO_CLS}'\n" + SHALLOW_MICRO)
    model, scope = build_model(Config.fromfile(str(config)))
    model.eval()
    data = synthetic_batch(scope, 2, 96, 64)
    with torch.no_grad():
        want = [s.pred_score for s in model.test_step(data)]
    _swap_in_backbone(model, 'onnxruntime', synthetic_batch(scope, 1, 64, 96), str(tmp_path))
    assert isinstance(model.backbone, OnnxRuntimeBackbone)
    with torch.no_grad():
        got = [s.pred_score for s in model.test_step(data)]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="inference in float32 on the CPU"):
        check_backbone_path('onnxruntime', 'cpu', False, ('training', ), 1)


def test_cpu_peak_memory_is_per_measurement():
    """benchmark.py's CPU peak is the resident-set peak of each row, not of the whole process
    (else every row after a training row would report the training peak)."""
    from benchmarks.support.throughput import _peak_mib, _reset_peak
    cpu = torch.device('cpu')
    block = np.ones(400 * 2**20 // 8)  # 400 MiB, touched
    high = _peak_mib(cpu)
    del block
    _reset_peak(cpu)
    assert _peak_mib(cpu) < high - 300
