"""``LoadCocoAnnotations``: mmdet's ``LoadAnnotations`` for every instance form COCO allows.

COCO allows an instance without a segmentation (absent, or an empty list), e.g. a box-only
annotation. mmdet's ``CocoDataset`` then gives the instance no mask and ``LoadAnnotations`` fails
on it with a KeyError deep in a dataloader worker. Here such an instance gets its box as its mask,
the convention of pycocotools' ``COCO.loadRes`` for results without a segmentation.
"""
from mmdet.datasets.transforms import LoadAnnotations
from mmengine.registry import TRANSFORMS


def box_polygon(bbox) -> list:
    """[x1, y1, x2, y2] -> the box as one polygon [[x1, y1, x1, y2, x2, y2, x2, y1]]."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    return [[x1, y1, x1, y2, x2, y2, x2, y1]]


@TRANSFORMS.register_module()
class LoadCocoAnnotations(LoadAnnotations):
    """``LoadAnnotations`` (same arguments) where an instance without a mask gets its box as
    its mask."""

    def _process_masks(self, results: dict) -> list:
        for instance in results.get('instances', []):
            if not instance.get('mask'):
                instance['mask'] = box_polygon(instance['bbox'])
        return super()._process_masks(results)
