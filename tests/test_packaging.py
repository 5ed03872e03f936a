"""What the installed package holds: its configs in the OpenMMLab place (``vssd_mm/.mim/configs``,
files in a built wheel) and an honest torch floor."""
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO
from vssd_mm.configs import CONFIGS_DIR, config_path


def test_code_finds_configs_in_the_package():
    path = config_path('mmdet/mask_rcnn_vssd_t_1x.py')
    assert path.read_text() == (REPO / 'configs' / 'mmdet' / 'mask_rcnn_vssd_t_1x.py').read_text()
    with pytest.raises(FileNotFoundError, match=f'no config mmdet/nope.py in {CONFIGS_DIR}'):
        config_path('mmdet/nope.py')


def test_a_built_wheel_ships_every_config_and_states_its_torch_floor(tmp_path):
    source = tmp_path / 'src'  # a copy: building in the checkout would write into it
    source.mkdir()
    for name in ('setup.py', 'README.md'):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / 'vssd_mm', source / 'vssd_mm', symlinks=True,
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copytree(REPO / 'configs', source / 'configs')
    proc = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps',
                           '--no-build-isolation', '-w', str(tmp_path / 'dist'), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = next((tmp_path / 'dist').glob('vssd_mm-*.whl'))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith('METADATA'))).decode()
    shipped = {n[len('vssd_mm/.mim/configs/'):] for n in names
               if n.startswith('vssd_mm/.mim/configs/')}
    in_checkout = {str(p.relative_to(REPO / 'configs')) for p in (REPO / 'configs').rglob('*.py')}
    assert shipped == in_checkout and 'mmpretrain/ablation/vssd_m_ablation_5_overlap_100e_in1k.py' in shipped
    assert 'Requires-Dist: torch>=2.4' in metadata
