"""Synthetic batches in the shape each library's ``model(..., mode='loss')`` expects."""
import torch


def synthetic_batch(scope: str, batch: int, height: int, width: int, num_classes: int = 3):
    """``dict(inputs=[uint8 (3, H, W)] * batch, data_samples=[...])`` with random images and
    simple ground truth (two boxes + masks, a random label map, or a class label)."""
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=g)
              for _ in range(batch)]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                batch_input_shape=(height, width), scale_factor=(1., 1.))
    samples = []
    for i in range(batch):
        if scope == 'mmdet':
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            from mmengine.structures import InstanceData
            boxes = torch.tensor([[0.1, 0.1, 0.4, 0.5], [0.5, 0.3, 0.9, 0.8]]) * \
                torch.tensor([width, height, width, height])
            masks = torch.zeros(2, height, width, dtype=torch.uint8)
            for m, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
                m[y0:y1, x0:x1] = 1
            gt = InstanceData(bboxes=boxes, labels=torch.tensor([0, (i + 1) % num_classes]),
                              masks=BitmapMasks(masks.numpy(), height, width))
            samples.append(DetDataSample(metainfo=meta, gt_instances=gt))
        elif scope == 'mmseg':
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample
            labels = torch.randint(0, num_classes, (1, height, width), generator=g)
            samples.append(SegDataSample(metainfo=meta, gt_sem_seg=PixelData(data=labels)))
        else:
            from mmpretrain.structures import DataSample
            samples.append(DataSample(metainfo=meta).set_gt_label(i % num_classes))
    return dict(inputs=inputs, data_samples=samples)
