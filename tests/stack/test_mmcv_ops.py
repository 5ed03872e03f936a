"""mmcv's compiled CPU ops give hand-checked numbers."""
import torch


def test_nms_hand_case():
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.],     # kept: best score
                          [1., 1., 11., 11.],     # IoU with box 0 = 81 / 119 = 0.68
                          [20., 20., 30., 30.]])  # disjoint: kept
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    torch.testing.assert_close(dets, torch.tensor([[0., 0., 10., 10., 0.9], [20., 20., 30., 30., 0.7]]))
    _, keep = nms(boxes, scores, iou_threshold=0.7)  # 0.68 < 0.7: nothing suppressed
    assert keep.tolist() == [0, 1, 2]


def test_roi_align_on_a_linear_ramp():
    # f(row, col) = col + 10 * row. Bilinear sampling of a linear function is exact, so each bin's
    # average equals f at the bin centre; aligned=True puts pixel (i, j) at continuous (j+.5, i+.5).
    from mmcv.ops import RoIAlign
    rows, cols = torch.meshgrid(torch.arange(8.), torch.arange(8.), indexing='ij')
    feat = (cols + 10 * rows)[None, None]
    rois = torch.tensor([[0., 2., 2., 6., 6.]])  # (batch index, x1, y1, x2, y2): bins of 2 x 2 px
    out = RoIAlign(output_size=(2, 2), spatial_scale=1., sampling_ratio=2, aligned=True)(feat, rois)
    # bin centres x, y in {3, 5} -> index coordinates {2.5, 4.5}
    torch.testing.assert_close(out, torch.tensor([[[[27.5, 29.5], [47.5, 49.5]]]]))
