"""benchmarks/tta_memory.py's measurement: the dense row merges to exactly what InstanceSegTTAModel
gives (the rows compare like with like), and the cropped merge needs far less memory."""
import sys

import pytest
import torch

from benchmarks.support.tta_memory import (SyntheticDetector, dense_merge, measure, table,
                                           tta_batch, tta_model)


def test_dense_formulation_merges_to_what_the_tta_model_gives():
    detector = SyntheticDetector(60, 90, dets=20)
    tta = tta_model(detector, max_per_img=30)
    predicted = [detector.test_step(dict(data_samples=view))[0]
                 for view in tta_batch(60, 90, 4)['data_samples']]
    assert predicted[1].flip and predicted[1].pred_instances.masks.dtype == torch.bool
    want = dense_merge(tta, predicted)
    got = tta.test_step(tta_batch(60, 90, 4))[0].pred_instances
    assert len(got) == 30 and got.masks.any()
    for key in ('bboxes', 'scores', 'labels', 'masks'):
        assert torch.equal(got[key], want[key]), key


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='resident set from /proc')
def test_rows_and_the_cropped_merge_needs_less_than_the_dense_one():
    rows = measure(300, 450, dets=40, views=6)
    assert [r.path for r in rows] == ['plain test step (1 view)',
                                      'TTA, InstanceSegTTAModel (6 views)',
                                      'TTA, dense merge (6 views)']
    view_mib = 40 * 300 * 450 / 2**20
    plain, ours, dense = rows
    assert plain.ratio == 1.0 and ours.ratio == ours.peak_mib / plain.peak_mib
    assert plain.peak_mib >= 0.9 * view_mib  # the masks of the view are measured
    assert dense.peak_mib > 2 * ours.peak_mib  # 6 views held and concatenated vs one at a time
    assert 'peak MiB' in table(rows, 300, 450, 40)
