"""vssd_mm: the VSSD backbone (Visual State Space Duality) for mmpretrain, mmdet and mmseg."""
import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'", (ROOT / 'vssd_mm' / 'version.py').read_text()).group(1)

# install_requires holds what `import vssd_mm` and the NC-SSD op need: never an OpenMMLab package,
# so that installing vssd_mm leaves whichever OpenMMLab a venv has (the releases or the OneDL
# forks, which install the same modules under other names) as it is. The OpenMMLab libraries are
# extras, per task and per stack: `.[det]` the OpenMMLab releases, `.[det-onedl]` the OneDL forks.
# Exact pins of the tested stacks: requirements/stack.txt and requirements/stack-onedl.txt
# (tools/install.sh installs them).
# the releases' mmengine resolves `mmdet::` bases through pkg_resources (gone in setuptools 81)
MM_BASE = ['mmengine>=0.10.4,<1.0', 'mmcv>=2.0.0,<2.2.0', 'setuptools>=77.0.3,<81']
ONEDL_BASE = ['onedl-mmengine>=0.10.8,<1.0', 'onedl-mmcv>=2.3.0,<2.4']
EXTRAS = {
    'det': MM_BASE + ['mmdet>=3.3.0,<3.4', 'pycocotools'],
    # mmsegmentation 1.2.2 imports ftfy and regex without declaring them (the fork declares them)
    'seg': MM_BASE + ['mmsegmentation>=1.2.2,<1.3', 'ftfy', 'regex'],
    'cls': MM_BASE + ['mmpretrain>=1.2.0,<1.3'],
    'det-onedl': ONEDL_BASE + ['onedl-mmdetection>=3.5.1,<3.6', 'imaug', 'pycocotools'],
    'seg-onedl': ONEDL_BASE + ['onedl-mmsegmentation>=1.4.2,<1.5', 'numpy>2'],
    'cls-onedl': ONEDL_BASE + ['onedl-mmpretrain>=1.3.6,<1.4'],
    'tests': ['pytest>=8', 'pytest-xdist>=3.5'],
    # tools/export_onnx.py: torch's default (dynamo) ONNX exporter and the onnxruntime check
    'deploy': ['onnx>=1.17', 'onnxruntime>=1.20', 'onnxscript>=0.3'],
}
for suffix in ('', '-onedl'):
    EXTRAS['all' + suffix] = sorted({req for task in ('det', 'seg', 'cls')
                                     for req in EXTRAS[task + suffix]})

setup(
    name='vssd_mm',
    version=VERSION,
    description='VSSD (Visual State Space Duality) backbone for OpenMMLab: mmpretrain, mmdet, mmseg',
    long_description=(ROOT / 'README.md').read_text() if (ROOT / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['vssd_mm', 'vssd_mm.*']),
    # the configs and the model index ship with the package the OpenMMLab way: vssd_mm/.mim/configs
    # and .mim/model-index.yml (links in the checkout; a built wheel holds the files), where mim,
    # mmpretrain's model hub and our tools find them
    package_data={'vssd_mm': ['.mim/configs/**/*.py', '.mim/configs/*/metafile.yml',
                              '.mim/model-index.yml']},
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
