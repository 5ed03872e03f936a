"""Effective receptive field of the last stage of a config's backbone, saved as a heat map PNG.

    python tools/visualize_erf.py CONFIG [CHECKPOINT] [--images DIR] [--num-images 16]
                                  [--size 512] [--out erf.png]

Without --images, generated scenes are used (tools/make_demo_data.py's shapes); without a
checkpoint, the randomly initialised network.
"""
import argparse
import os.path as osp
from pathlib import Path

import cv2
import numpy as np
import torch

from vssd_mm.arguments import positive_int
from vssd_mm.analysis.erf import effective_receptive_field, erf_image
from vssd_mm.analysis.model_builder import build_model
from vssd_mm.compat import filter_known_warnings
from vssd_mm.demo_data.shapes import random_scene
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cli import add_common_arguments
from vssd_mm.engine.evaluated_checkpoint import load_into
from vssd_mm.engine.paths import check_file_to_write

MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])


def _images(folder, num: int, size: int):
    if folder:
        paths = sorted(p for p in Path(folder).rglob('*')
                       if p.suffix.lower() in ('.jpg', '.jpeg', '.png'))[:num]
        if not paths:
            raise SystemExit(f'error: no .jpg/.png images under {folder}')
        bgr = [cv2.resize(cv2.imread(str(p)), (size, size)) for p in paths]
    else:
        rng = np.random.default_rng(0)
        bgr = [random_scene(rng, size, size, (4, 8), (size / 16, size / 6))[0] for _ in range(num)]
    for image in bgr:
        rgb = (image[..., ::-1] - MEAN) / STD
        yield torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--images', help='folder of images (default: generated scenes)')
    parser.add_argument('--num-images', type=positive_int, default=16)
    parser.add_argument('--size', type=positive_int, default=512,
                        help='square input size in pixels')
    parser.add_argument('--out', default='erf.png')
    add_common_arguments(parser)
    with exit_on_error():  # a --cfg-options mistake, a missing config
        args = parser.parse_args(argv)
        if osp.exists(args.out):
            raise SystemExit(f'error: {args.out} exists; choose another --out')
        check_file_to_write(args.out, '--out', ('.png', '.jpg'))
        cfg = load_config(args.config, args.cfg_options)
    filter_known_warnings()
    model, _ = build_model(cfg)
    if args.checkpoint:
        with exit_on_error():  # unreadable, or not fitting the config's model: one line
            load_into(model, args.checkpoint, osp.basename(args.config))
    erf = effective_receptive_field(model.backbone, _images(args.images, args.num_images,
                                                            args.size))
    cv2.imwrite(args.out, erf_image(erf))
    peak = np.unravel_index(erf.argmax(), erf.shape)
    share = erf[args.size // 4:3 * args.size // 4, args.size // 4:3 * args.size // 4].sum() / erf.sum()
    print(f'ERF of {args.config}: {args.out} ({args.size}x{args.size}, {args.num_images} images); '
          f'peak at {tuple(int(v) for v in peak)}, central half holds {share:.0%} of the gradient')


if __name__ == '__main__':
    main()
