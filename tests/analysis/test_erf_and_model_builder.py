"""tools/visualize_erf.py and the model builder behind the analysis tools."""
from pathlib import Path

import cv2
import numpy as np
import torch

from vssd_mm.analysis.erf import effective_receptive_field
from vssd_mm.models import VSSD

REPO = Path(__file__).resolve().parents[2]
MICRO_CLS = REPO / 'configs' / 'mmpretrain' / 'vssd_m_8xb128_in1k.py'


def test_erf_of_a_random_network_peaks_near_the_centre():
    torch.manual_seed(0)
    backbone = VSSD('micro')
    images = [torch.randn(3, 96, 96) for _ in range(2)]
    erf = effective_receptive_field(backbone, images)
    assert erf.shape == (96, 96) and np.isfinite(erf).all() and erf.min() >= 0
    peak = np.unravel_index(erf.argmax(), erf.shape)
    assert all(24 <= p < 72 for p in peak), peak  # in the central half of the image
    centre = erf[32:64, 32:64].mean()
    border = np.concatenate([erf[:8].ravel(), erf[-8:].ravel()]).mean()
    assert centre > 1.5 * border  # global mixers: a wide field, still centred


def test_visualize_erf_tool_writes_a_heat_map(tool, tmp_path):
    out = tmp_path / 'erf.png'
    proc = tool('visualize_erf.py', MICRO_CLS, '--size', '64', '--num-images', '2', '--out', out)
    image = cv2.imread(str(out))
    assert image.shape == (64, 64, 3)
    assert 'peak at' in proc.stdout
    again = tool('visualize_erf.py', MICRO_CLS, '--out', out, check=False)
    assert again.returncode != 0 and 'exists' in again.stderr  # never overwritten


def test_build_model_leaves_the_default_scope_as_it_was():
    """Building an mmdet model, then an mmpretrain one in the same process: each from its own
    registry, and the caller's default scope unchanged afterwards."""
    import vssd_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from vssd_mm.analysis.model_builder import build_model

    def current():
        instance = DefaultScope.get_current_instance()
        return None if instance is None else instance.scope_name

    before = current()
    det, scope = build_model(Config.fromfile(str(REPO / 'configs/mmdet/mask_rcnn_vssd_m_1x.py')))
    assert scope == 'mmdet' and type(det).__name__ == 'MaskRCNN'
    assert current() == before
    cls, scope = build_model(Config.fromfile(str(MICRO_CLS)))
    assert scope == 'mmpretrain' and type(cls).__name__ == 'ImageClassifier'
    assert current() == before


def test_visualize_erf_loads_an_official_file_and_refuses_one_that_does_not_fit(tool, tmp_path):
    # an official classification file (VSSD-Micro's key layout) is converted as tools/test.py
    # does; a VSSD-Tiny file is one error line, never an ERF of random weights
    torch.manual_seed(0)
    fitting, other = tmp_path / 'vssd_micro.pth', tmp_path / 'vssd_tiny.pth'
    for path, arch in ((fitting, 'micro'), (other, 'tiny')):
        weights = {k: v for k, v in VSSD(arch, out_indices=(3,)).state_dict().items()
                   if not k.startswith('outnorm')}
        head = dict(embed=VSSD(arch).num_features[-1])
        weights.update({'norm.weight': torch.ones(head['embed']),
                        'norm.bias': torch.zeros(head['embed']),
                        'head.weight': torch.zeros(1000, head['embed']),
                        'head.bias': torch.zeros(1000)})
        torch.save(dict(model=weights), path)
    out = tmp_path / 'erf.png'
    proc = tool('visualize_erf.py', MICRO_CLS, str(fitting), '--size', '64', '--num-images', '1',
                '--out', out)
    assert 'peak at' in proc.stdout and out.is_file()
    refused = tool('visualize_erf.py', MICRO_CLS, str(other), '--size', '64', '--out',
                   tmp_path / 'other.png', check=False)
    errors = [line for line in refused.stderr.splitlines() if line.startswith('error:')]
    assert refused.returncode != 0 and len(errors) == 1 and 'Traceback' not in refused.stderr
    assert not (tmp_path / 'other.png').exists()
