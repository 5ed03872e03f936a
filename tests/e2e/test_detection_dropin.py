"""Drop-in: mmdet's packaged Mask R-CNN config with only the backbone replaced by VSSD trains."""
import re

from conftest import FIXTURES, run_tool


def test_mmdet_mask_rcnn_with_vssd_backbone_trains_one_iteration(tmp_path):
    run_tool('make_demo_data.py', 'coco', '--num-train', '2', '--num-val', '1', cwd=tmp_path)
    proc = run_tool(
        'train.py', FIXTURES / 'mask_rcnn_r50_dropin_vssd.py', '--work-dir', 'work',
        '--cfg-options',
        # the data is ours (3 classes of shapes); the model and recipe are mmdet's
        'train_dataloader.dataset.data_root=data/coco_demo/',
        'train_dataloader.dataset.metainfo.classes=[square,circle,triangle]',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'train_cfg.max_epochs=1', 'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
        'default_hooks.logger.interval=1',
        'train_dataloader.dataset.pipeline.2.scale=(480,288)',  # not 1333x800: a shorter step
        cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert "'type': 'VSSD'" in log or "type='VSSD'" in log
    losses = re.search(r'Epoch\(train\) \[1\]\[1/1\].* loss: ([\d.]+)', log)
    assert losses, log[-3000:]
    assert float(losses.group(1)) > 0
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
