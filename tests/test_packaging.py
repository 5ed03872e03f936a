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


@pytest.fixture(scope='module')
def built_wheel(tmp_path_factory):
    """vssd_mm's wheel as `pip wheel .` builds it from a copy of the checkout."""
    tmp_path = tmp_path_factory.mktemp('wheel')
    source = tmp_path / 'src'  # a copy: building in the checkout would write into it
    source.mkdir()
    for name in ('setup.py', 'README.md', 'model-index.yml'):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / 'vssd_mm', source / 'vssd_mm', symlinks=True,
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copytree(REPO / 'configs', source / 'configs')
    proc = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps',
                           '--no-build-isolation', '-w', str(tmp_path / 'dist'), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next((tmp_path / 'dist').glob('vssd_mm-*.whl'))


def test_a_built_wheel_ships_every_config_and_states_its_torch_floor(built_wheel):
    with zipfile.ZipFile(built_wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith('METADATA'))).decode()
    shipped = {n[len('vssd_mm/.mim/configs/'):] for n in names
               if n.startswith('vssd_mm/.mim/configs/')}
    in_checkout = {str(p.relative_to(REPO / 'configs')) for p in (REPO / 'configs').rglob('*.py')}
    metafiles = {str(p.relative_to(REPO / 'configs'))
                 for p in (REPO / 'configs').glob('*/metafile.yml')}
    assert metafiles and metafiles <= shipped and 'vssd_mm/.mim/model-index.yml' in names
    shipped -= metafiles
    assert shipped == in_checkout and 'mmpretrain/ablation/vssd_m_ablation_5_overlap_100e_in1k.py' in shipped
    assert 'Requires-Dist: torch>=2.4' in metadata


def _wheel_requirements(wheel):
    from packaging.requirements import Requirement
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist()
                                     if n.endswith('METADATA'))).decode()
    return [Requirement(line.split(':', 1)[1].strip()) for line in metadata.splitlines()
            if line.startswith('Requires-Dist:')]


def _extra_of(requirement):
    import re
    match = re.search(r'extra == "([^"]+)"', str(requirement.marker or ''))
    return match.group(1) if match else None


def _pins(name):
    from packaging.requirements import Requirement
    return {req.name: req for req in (Requirement(line) for line in
            (REPO / 'requirements' / name).read_text().splitlines()
            if line.strip() and not line.startswith('#'))}


UPSTREAM = {'mmengine', 'mmcv', 'mmdet', 'mmsegmentation', 'mmpretrain'}
FORKS = {'onedl-mmengine', 'onedl-mmcv', 'onedl-mmdetection', 'onedl-mmsegmentation',
         'onedl-mmpretrain'}


def test_installing_vssd_mm_brings_no_openmmlab_package_and_extras_name_one_stack(built_wheel):
    """`pip install vssd_mm` (or -e .) must leave a venv's OpenMMLab (either stack) as it is; an
    extra installs one stack only, at versions that admit that stack's tested pins."""
    requirements = _wheel_requirements(built_wheel)
    plain = {req.name for req in requirements if _extra_of(req) is None}
    assert plain == {'torch', 'numpy'}
    by_extra = {}
    for req in requirements:
        if _extra_of(req) is not None:
            by_extra.setdefault(_extra_of(req), []).append(req)
    assert {'det', 'seg', 'cls', 'all', 'det-onedl', 'seg-onedl', 'cls-onedl',
            'all-onedl'} <= set(by_extra)
    for extra, reqs in by_extra.items():
        names = {req.name for req in reqs}
        if extra.endswith('-onedl'):
            stack, other, pins = FORKS, UPSTREAM, _pins('stack-onedl.txt')
        elif extra in ('det', 'seg', 'cls', 'all'):
            stack, other, pins = UPSTREAM, FORKS, _pins('stack.txt')
        else:
            assert not names & (UPSTREAM | FORKS), extra
            continue
        assert names & stack and not names & other, (extra, names)
        for req in (req for req in reqs if req.name in stack):
            pinned = pins[req.name]  # each OpenMMLab distribution is pinned exactly for its stack
            version = next(spec.version for spec in pinned.specifier if spec.operator == '==')
            assert req.specifier.contains(version, prereleases=True), (extra, req, version)
