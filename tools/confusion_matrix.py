"""Confusion matrix of the predictions that tools/test.py --out dumped, as a PNG and a JSON.

mmdet, mmseg or mmpretrain: the config's default_scope decides.

    python tools/test.py CONFIG CHECKPOINT --out preds.pkl
    python tools/confusion_matrix.py CONFIG preds.pkl [--out-dir DIR] [--counts]
                                     [--score-thr 0.3] [--tp-iou-thr 0.5]   # detection

Rows are ground truth, columns predictions. Detection follows mmdet's analysis tool: ground-truth
boxes from the config's test set, a background row (detections that overlap no box) and column
(boxes that no detection of their class found). Segmentation counts labelled pixels.
"""
import argparse
import os.path as osp

from mmengine.utils import track_iter_progress

from vssd_mm.analysis import confusion_report
from vssd_mm.analysis.confusion_inputs import confusion_from_dump
from vssd_mm.arguments import non_negative_float, positive_float
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cfg_options import CfgOptionsAction
from vssd_mm.engine.paths import check_folder_to_write


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config the predictions were made with')
    parser.add_argument('predictions', help='the .pkl file of tools/test.py --out')
    parser.add_argument('--out-dir', help='folder for confusion_matrix.png and .json (default: '
                        'the folder of PREDICTIONS; files of those names are replaced)')
    parser.add_argument('--counts', action='store_true',
                        help='write counts into the cells (default: percent of the row)')
    parser.add_argument('--score-thr', type=non_negative_float, default=0.3,
                        help='detection: detections scored below this are left out')
    parser.add_argument('--tp-iou-thr', type=positive_float, default=0.5,
                        help='detection: IoU (0 to 1] from which a detection covers a '
                        'ground-truth box')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. test_dataloader.dataset.data_root=...')
    args = parser.parse_args(argv)
    if args.tp_iou_thr > 1:
        parser.error(f'argument --tp-iou-thr: must be <= 1, got {args.tp_iou_thr}')
    return args


def main(argv=None):
    filter_known_warnings()
    with exit_on_error():
        args = parse_args(argv)
        cfg = load_config(args.config, args.cfg_options)
        out_dir = args.out_dir or osp.dirname(osp.abspath(args.predictions))
        check_folder_to_write(out_dir, '--out-dir')
        confusion = confusion_from_dump(cfg, args.predictions, args.score_thr, args.tp_iou_thr,
                                        progress=track_iter_progress)
        line = confusion_report.summary(confusion)
        png, data = confusion_report.write(confusion, out_dir, args.counts,
                                           title=osp.basename(args.config))
    print(f'{line}; wrote {png} and {data}')


if __name__ == '__main__':
    main()
