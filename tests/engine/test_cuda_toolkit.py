"""The CUDA toolkit mmcv's CUDA ops are built with: the system's nvcc when it matches torch's CUDA,
else CUDA's compiler from the package registry joined with torch's own CUDA headers — exercised for
real by compiling a small CUDA extension with torch.utils.cpp_extension (no GPU needed)."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import REPO
from vssd_mm.engine.cuda_toolkit import (ToolkitError, build_environment,
                                         install_packaged_toolkit, matching_system_toolkit,
                                         pins_file, torch_cuda_root)
from vssd_mm.engine.mmcv_cuda import device_code

REQUIREMENTS = REPO / 'requirements'


def fake_cuda_home(root, release, with_headers=True):
    (root / 'bin').mkdir(parents=True)
    nvcc = root / 'bin' / 'nvcc'
    nvcc.write_text(f'#!/bin/sh\necho "Cuda compilation tools, release {release}, V{release}.1"\n')
    nvcc.chmod(0o755)
    if with_headers:
        (root / 'include').mkdir()
        (root / 'include' / 'cuda_runtime.h').write_text('')
    return root


def test_a_system_nvcc_is_used_only_when_its_release_matches(tmp_path, monkeypatch):
    monkeypatch.delenv('CUDA_PATH', raising=False)
    monkeypatch.setenv('CUDA_HOME', str(fake_cuda_home(tmp_path / 'cuda-12.4', '12.4')))
    monkeypatch.setenv('PATH', str(fake_cuda_home(tmp_path / 'wrapper', '13.0', False) / 'bin'))
    assert matching_system_toolkit('12.4') == tmp_path / 'cuda-12.4'
    # 13.0 only through a wrapper script without headers: not a CUDA home
    found = matching_system_toolkit('13.0')
    assert found is None or (found / 'include' / 'cuda_runtime.h').is_file()
    assert found != tmp_path / 'wrapper'


def test_a_torch_cuda_without_pins_is_one_clear_line():
    with pytest.raises(ToolkitError) as err:
        pins_file(REQUIREMENTS, '12.8')
    message = str(err.value)
    assert 'torch is built for CUDA 12.8 and no nvcc 12.8 was found' in message
    assert 'pinned for CUDA 13.0 only' in message
    assert 'Install the CUDA 12.8 toolkit and set CUDA_HOME' in message and '\n' not in message
    assert pins_file(REQUIREMENTS, '13.0').name == 'cuda-toolkit-13.0.txt'


KERNEL = textwrap.dedent('''\
    #include <cuda/std/cstdint>
    #include <cublas_v2.h>  // from torch's own CUDA packages, linked into the toolkit
    __global__ void vssd_mm_scale_kernel(float* x, float a, cuda::std::int64_t n) {
      cuda::std::int64_t i = blockIdx.x * (cuda::std::int64_t)blockDim.x + threadIdx.x;
      if (i < n) x[i] *= a;
    }
    extern "C" void vssd_mm_scale(float* x, float a, long n) {
      vssd_mm_scale_kernel<<<(n + 255) / 256, 256>>>(x, a, n);
    }
    ''')


def _registry_reachable(tmp_path) -> bool:
    # the smallest pinned package: where it cannot be fetched, none can
    pin = [line for line in pins_file(REQUIREMENTS, '13.0').read_text().splitlines()
           if line.startswith('nvidia-cuda-crt')][0]
    proc = subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', '-d',
                           str(tmp_path / 'probe'), pin], capture_output=True)
    return proc.returncode == 0


@pytest.mark.skipif(torch.version.cuda != '13.0',
                    reason=f'the packaged toolkit is pinned for CUDA 13.0; torch has '
                           f'{torch.version.cuda}')
def test_the_packaged_toolkit_compiles_a_cuda_extension_for_sm90(tmp_path):
    if not _registry_reachable(tmp_path):
        pytest.skip('the CUDA compiler packages cannot be fetched from the package registry')
    home = install_packaged_toolkit(tmp_path / 'cache', REQUIREMENTS, '13.0', torch_cuda_root(),
                                    [sys.executable, '-m', 'pip'])
    assert str(home).startswith(str(tmp_path / 'cache'))  # never into the venv
    assert (home / 'lib64' / 'libcudart.so').exists()
    source = tmp_path / 'scale.cu'
    source.write_text(KERNEL)
    env = {**os.environ, **build_environment(home), 'TORCH_CUDA_ARCH_LIST': '9.0'}
    proc = subprocess.run(
        [sys.executable, '-c',
         'import sys\nfrom torch.utils.cpp_extension import load\n'
         'load("vssd_mm_scale", [sys.argv[1]], build_directory=sys.argv[2], '
         'is_python_module=False)', str(source), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sass, ptx, symbols = device_code(str(tmp_path / 'vssd_mm_scale.so'),
                                     str(home / 'bin' / 'cuobjdump'))
    assert sass == {90} and ptx == set()
    assert 'vssd_mm_scale_kernel' in symbols
    # a second call reuses the toolkit
    assert install_packaged_toolkit(tmp_path / 'cache', REQUIREMENTS, '13.0', torch_cuda_root(),
                                    [sys.executable, '-m', 'pip']) == home
