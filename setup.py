"""vssd_mm: the VSSD backbone (Visual State Space Duality) for mmpretrain, mmdet and mmseg."""
import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'", (ROOT / 'vssd_mm' / 'version.py').read_text()).group(1)

# install_requires holds what `import vssd_mm` and the NC-SSD op need; the OpenMMLab libraries are
# extras because each user needs only the ones for their task. Exact pins of the tested stack live in
# requirements/stack.txt (tools/install.sh installs them).
MM_BASE = ['mmengine>=0.10.4,<1.0', 'mmcv>=2.0.0,<2.2.0']
EXTRAS = {
    'det': MM_BASE + ['mmdet>=3.3.0,<3.4', 'pycocotools'],
    'seg': MM_BASE + ['mmsegmentation>=1.2.2,<1.3'],
    'cls': MM_BASE + ['mmpretrain>=1.2.0,<1.3'],
    'tests': ['pytest>=8', 'pytest-xdist>=3.5'],
    # tools/export_onnx.py: torch's default (dynamo) ONNX exporter and the onnxruntime check
    'deploy': ['onnx>=1.17', 'onnxruntime>=1.20', 'onnxscript>=0.3'],
}
EXTRAS['all'] = sorted({req for name in ('det', 'seg', 'cls') for req in EXTRAS[name]})

setup(
    name='vssd_mm',
    version=VERSION,
    description='VSSD (Visual State Space Duality) backbone for OpenMMLab: mmpretrain, mmdet, mmseg',
    long_description=(ROOT / 'README.md').read_text() if (ROOT / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['vssd_mm', 'vssd_mm.*']),
    # the configs ship with the package the OpenMMLab way: vssd_mm/.mim/configs (a link to
    # configs/ in the checkout; a built wheel holds the files), where mim and our tools find them
    package_data={'vssd_mm': ['.mim/configs/**/*.py']},
    python_requires='>=3.9',
    # torch 2.4: torch.library.custom_op / register_fake / register_autograd (ops/nc_ssd/op.py)
    install_requires=['torch>=2.4', 'numpy'],
    extras_require=EXTRAS,
    license='Apache-2.0',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
