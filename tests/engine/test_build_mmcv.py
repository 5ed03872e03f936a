"""tools/build_mmcv.sh, the install script's mmcv build step, on a stand-in source tree that
records the build environment mmcv's setup.py would see (a real build takes most of an hour)."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import REPO

SETUP = textwrap.dedent('''\
    import json, os, time
    from setuptools import setup
    keys = ('MMCV_WITH_OPS', 'FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST', 'CUDA_VISIBLE_DEVICES',
            'CUDA_HOME', 'CPATH', 'MAX_JOBS')
    with open(os.environ['RECORD'], 'w') as f:
        json.dump({key: os.environ.get(key) for key in keys}, f)
    time.sleep(float(os.environ.get('SLEEP', '0')))
    setup(name='mmcv', version='0.0.1', py_modules=[])
    ''')


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / 'mmcv-src'
    folder.mkdir()
    (folder / 'setup.py').write_text(SETUP)
    return folder


def build(source, out, plan, **env):
    import os
    env = {**os.environ, 'RECORD': str(out.parent / 'record.json'), 'MAX_JOBS': '3',
           'CACHE': str(out.parent / 'cache'), **env}
    return subprocess.run(['bash', str(REPO / 'tools' / 'build_mmcv.sh'), sys.executable,
                           str(source), str(out), plan], env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_cpu_build_hides_the_gpus_from_mmcvs_setup(source, tmp_path):
    proc = build(source, tmp_path / 'out', 'any')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(tmp_path / 'out' /
                                                       'mmcv-0.0.1-py3-none-any.whl')
    seen = json.loads((tmp_path / 'record.json').read_text())
    assert seen['MMCV_WITH_OPS'] == '1' and seen['FORCE_CUDA'] == '0'
    assert seen['CUDA_VISIBLE_DEVICES'] == '' and seen['MAX_JOBS'] == '3'
    assert seen['TORCH_CUDA_ARCH_LIST'] is None


@pytest.mark.skipif(torch.version.cuda != '13.0', reason='needs a CUDA 13.0 build of torch')
def test_a_cuda_build_gets_the_toolkit_and_the_archs(source, tmp_path):
    proc = build(source, tmp_path / 'out', 'cuda 13.0 8.0;9.0+PTX')
    if proc.returncode != 0 and 'no CUDA toolkit' in proc.stderr:
        pytest.skip('no CUDA 13.0 toolkit here and the registry\'s cannot be fetched')
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads((tmp_path / 'record.json').read_text())
    assert seen['FORCE_CUDA'] == '1' and seen['TORCH_CUDA_ARCH_LIST'] == '8.0;9.0+PTX'
    assert seen['CUDA_VISIBLE_DEVICES'] is None
    from vssd_mm.engine.cuda_toolkit import nvcc_release, torch_cuda_root
    from pathlib import Path
    assert nvcc_release(Path(seen['CUDA_HOME'])) == '13.0'
    assert seen['CPATH'].split(':')[0] == str(torch_cuda_root() / 'include')


def test_a_build_past_its_time_limit_is_one_clear_line(source, tmp_path):
    proc = build(source, tmp_path / 'out', 'cpu', BUILD_TIMEOUT='2', SLEEP='30')
    assert proc.returncode == 1
    assert 'the mmcv build passed BUILD_TIMEOUT=2s and was stopped' in proc.stderr
    assert not list((tmp_path / 'out').glob('*.whl'))
