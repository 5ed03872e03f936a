"""FLOP counting: the NC-SSD handle is exact, and counted the published way the classification
models match the paper's table."""
import re
from pathlib import Path

import pytest
import torch

from vssd_mm.analysis import count_flops, nc_ssd_flops
from vssd_mm.models import VSSD
from vssd_mm.models.layers import SSDMixer

REPO = Path(__file__).resolve().parents[2]


def test_nc_ssd_count_by_hand():
    # KV: every (token, head, p, n) is one multiply-add; y = C KV: the same again
    assert nc_ssd_flops(2, 10, 3, 4, 5) == 2 * (2 * 10 * 3 * 4 * 5)
    assert nc_ssd_flops(2, 10, 3, 4, 5, mode='published') == 2 * (2 * 10 * 4 * 5)
    with pytest.raises(ValueError, match='mode must be one of'):
        nc_ssd_flops(1, 1, 1, 1, 1, mode='fvcore')


def test_the_mixer_is_counted_op_by_op():
    dim, heads, d_state, h, w = 32, 2, 16, 6, 5
    mixer = SSDMixer(dim, heads, d_state=d_state)
    x = torch.randn(1, h * w, dim)

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mixer = mixer

        def forward(self, x):
            return self.mixer(x, (h, w))

    exact, _ = count_flops(Wrapped(), (x, ), 'exact')
    published, _ = count_flops(Wrapped(), (x, ), 'published')
    L, inner = h * w, 2 * dim
    headdim = inner // heads
    in_proj = L * dim * (2 * inner + 2 * d_state + heads)
    conv = L * (inner + 2 * d_state) * 9              # depth-wise 3x3
    norm = 5 * L * inner                               # fvcore's layer_norm rule
    out_proj = L * inner * dim
    ssd = 2 * L * heads * headdim * d_state
    assert exact == in_proj + conv + norm + out_proj + ssd
    assert exact - published == ssd - ssd // heads


@pytest.mark.parametrize('arch, paper_g', [('micro', 2.3), ('tiny', 4.5), ('small', 7.4),
                                           ('base', 16.1)])
def test_classification_flops_counted_the_published_way_match_the_paper(arch, paper_g):
    model = VSSD(arch, out_indices=(3, ))
    published, _ = count_flops(model, (torch.randn(1, 3, 224, 224), ), 'published')
    exact, _ = count_flops(model, (torch.randn(1, 3, 224, 224), ), 'exact')
    assert abs(published / 1e9 - paper_g) / paper_g < 0.03
    assert exact > published  # the head factor the release's count missed


def test_get_flops_tool_prints_both_counts_and_stages(tool):
    proc = tool('get_flops.py', REPO / 'configs' / 'mmpretrain' / 'vssd_m_8xb128_in1k.py',
                '--shape', '64', '96')
    out = proc.stdout
    assert len((out + proc.stderr).splitlines()) < 40  # the table, not mmengine's init report
    assert 'input    1 x 3 x 64 x 96' in out and 'params   13.51 M' in out
    exact, published = (float(v) for v in re.findall(r'FLOPs +([\d.]+) G', out))
    assert exact > published > 0
    stages = re.findall(r'backbone\.layers\.(\d) +([\d.]+) +([\d.]+)', out)
    assert [s[0] for s in stages] == ['0', '1', '2', '3']
    assert all(float(e) >= float(p) > 0 for _, e, p in stages)
    assert float(stages[3][1]) == float(stages[3][2])  # stage 3 is attention: no NC-SSD


def test_get_flops_counts_detection_and_segmentation_models(tool):
    for config, part in (('mmdet/mask_rcnn_vssd_m_1x.py', 'roi_head'),
                         ('mmseg/upernet_vssd_m_512x512_160k_ade20k.py', 'decode_head')):
        out = tool('get_flops.py', REPO / 'configs' / config, '--shape', '128', '160').stdout
        assert re.search(rf'{part} +[\d.]+ +[\d.]+', out), out
    assert 'without the auxiliary head' in out
