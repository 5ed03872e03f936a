"""benchmarks/ablation_speed.py: Table-5 models side by side; ratios from the measured medians."""
import json
import re

import pytest

from benchmarks.support.ablation_study import (ABLATION_DIR, SPEED_ROWS, TABLE5, AblationRow,
                                             speed_ratios, table5_configs)


def test_the_table_names_every_ablation_config_in_row_order():
    on_disk = sorted(p.name for p in ABLATION_DIR.glob('vssd_m_ablation_[0-9]_*.py'))
    assert [p.name for p in table5_configs()] == on_disk == list(TABLE5)
    assert set(SPEED_ROWS.values()) <= set(TABLE5)


def test_ratios_are_medians_relative_to_nc_ssd():
    def row(name, speeds):
        return AblationRow(name, '', '', 0, 0, speeds)
    rows = [row(SPEED_ROWS['SSD'], [4., 8., 5.]), row(SPEED_ROWS['Bi-SSD'], [2., 3., 9.]),
            row(SPEED_ROWS['NC-SSD'], [10., 1., 12.])]
    assert speed_ratios(rows) == pytest.approx({'NC-SSD': 1., 'SSD': 0.5, 'Bi-SSD': 0.3})
    assert speed_ratios(rows[:2]) is None  # NC-SSD not measured: no ratios


def test_tool_prints_the_rows_and_the_ratios_it_measured(tool, tmp_path):
    names = [SPEED_ROWS[m] for m in ('SSD', 'Bi-SSD', 'NC-SSD')]
    proc = tool('benchmarks.ablation_speed', '--configs', *[ABLATION_DIR / n for n in names],
                '--shape', '64', '64', '--batch-size', '2', '--rounds', '2', '--iters', '1',
                '--out-dir', tmp_path)
    out = proc.stdout
    assert 'INFO' not in proc.stdout + proc.stderr
    (record_path, ) = tmp_path.glob('ablation_*.json')
    record = json.loads(record_path.read_text())
    rows = {r['config']: r for r in record['rows']}
    assert list(rows) == names
    for r in rows.values():
        assert len(r['train_images_per_s']) == 2 and r['train_median'] > 0
        assert f"{r['params'] / 1e6:9.2f} {r['flops'] / 1e9:8.3f}" in out
    # the causal and non-causal mixers have the same weights; Bi-SSD's two B/C groups add some
    assert rows[names[0]]['params'] == rows[names[2]]['params'] < rows[names[1]]['params']
    nc = rows[SPEED_ROWS['NC-SSD']]['train_median']
    ratio_line = re.search(r'NC-SSD : SSD : Bi-SSD = ([\d.]+) : ([\d.]+) : ([\d.]+)', out)
    assert float(ratio_line[1]) == 1.0
    assert float(ratio_line[2]) == pytest.approx(rows[names[0]]['train_median'] / nc, abs=0.006)
    assert float(ratio_line[3]) == pytest.approx(rows[names[1]]['train_median'] / nc, abs=0.006)
    assert record['ratios']['SSD'] == pytest.approx(rows[names[0]]['train_median'] / nc)


def test_tool_names_a_missing_config(tool, tmp_path):
    proc = tool('benchmarks.ablation_speed', '--configs', tmp_path / 'nope.py', check=False)
    assert proc.returncode != 0
    assert f'config {tmp_path / "nope.py"} does not exist' in proc.stderr
