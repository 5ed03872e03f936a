"""Predictions of a config's model on images or a video, drawn and written as JSON.

mmdet, mmseg or mmpretrain configs alike (the config's default_scope decides):

    python tools/image_demo.py CONFIG CHECKPOINT|URL INPUT [--out-dir DIR] [--score-thr 0.3]
                               [--device cpu] [--tta] [--no-masks] [--topk 5] [--draw-scale 1]
"""
import argparse
import textwrap

import torch

from vssd_mm.arguments import non_negative_float, positive_float, positive_int
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cfg_options import CfgOptionsAction

EPILOG = textwrap.dedent("""\
    INPUT: an image, a folder of images (searched recursively) or a video (.mp4 .m4v .mov .avi
    .mkv). Written under --out-dir: vis/STEM.png, the drawn image (a video: vis/STEM.<suffix>,
    every frame drawn, same frame count and fps), and preds/STEM.json:
      det: labels, class_names, scores, bboxes (x1, y1, x2, y2 px), masks (COCO RLE), only the
           instances scoring above --score-thr, best first;
      seg: label_map (preds/STEM_labels.png, class id per pixel) and per class present its
           name, pixel count and share;
      cls: topk: the --topk best classes with softmax scores.
    A video's JSON holds one such record per frame. Predictions equal tools/test.py's for the
    same image (the config's test pipeline and test_step; --tta its tta_model/tta_pipeline).""")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='mmdet / mmseg / mmpretrain config file')
    parser.add_argument('checkpoint', help='checkpoint file, or its URL (http/https: downloaded '
                        'once into the torch hub cache); official VSSD classification files too')
    parser.add_argument('input', help='an image, a folder of images, or a video file')
    parser.add_argument('--out-dir', default='demo_out',
                        help='folder for the drawn pictures (vis/) and JSON predictions (preds/)')
    parser.add_argument('--score-thr', type=non_negative_float, default=0.3,
                        help='detection: keep (draw and write) instances scoring above this')
    parser.add_argument('--no-masks', action='store_true',
                        help='detection: leave the RLE masks out of the JSON (still drawn)')
    parser.add_argument('--topk', type=positive_int, default=5,
                        help='classification: how many best classes to write')
    parser.add_argument('--draw-scale', type=positive_float, default=1.,
                        help='size of the drawn pictures relative to the input (e.g. 4 for '
                        '64-px images: readable labels)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='torch device to predict on (default: cuda when a GPU is present, '
                        'else cpu)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation: the config\'s tta_model over tta_pipeline')
    parser.add_argument('--state-key', choices=['model', 'model_ema'],
                        help='official classification checkpoints: use their live (model, '
                        'default) or EMA (model_ema) weights')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. model.test_cfg.rcnn.max_per_img=50')
    return parser.parse_args(argv)


def main(argv=None):
    filter_known_warnings()
    from vssd_mm.inference import DemoOptions, run_demo
    with exit_on_error():  # a user's mistake: one `error:` line, as every tool here
        args = parse_args(argv)  # a --cfg-options mistake is a ToolError
        cfg = load_config(args.config, args.cfg_options)
        options = DemoOptions(score_thr=args.score_thr, masks=not args.no_masks,
                              topk=args.topk, draw_scale=args.draw_scale)
        result = run_demo(cfg, args.checkpoint, args.input, args.out_dir, options=options,
                          device=args.device, tta=args.tta, state_key=args.state_key,
                          config_name=args.config)
    what = ('video frame' if result.video else 'image') + ('' if result.count == 1 else 's')
    print(f'\n{result.count} {what} predicted: drawn into {args.out_dir}/vis, predictions in '
          f'{args.out_dir}/preds')


if __name__ == '__main__':
    main()
