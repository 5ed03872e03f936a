"""Convert an official VSSD classification checkpoint into an mmpretrain checkpoint.

Usage: python tools/convert_checkpoint.py SRC.pth DST.pth [--state-key model|model_ema]
The result loads into configs whose model is ImageClassifier + VSSD(out_indices=(3,)) +
GlobalAveragePooling + LinearClsHead. DST must not exist (nothing is overwritten).
"""
import argparse
import os.path as osp

import torch

from vssd_mm.engine import exit_on_error
from vssd_mm.engine.paths import check_file_to_write
from vssd_mm.models.checkpoints import (OFFICIAL_STATE_KEYS, convert_official_classifier,
                                        read_checkpoint)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--state-key', choices=OFFICIAL_STATE_KEYS, default='model',
                        help='entry of the official file (default: model)')
    args = parser.parse_args(argv)
    if osp.exists(args.dst):
        raise SystemExit(f'error: {args.dst} exists; choose another output path')
    with exit_on_error():
        check_file_to_write(args.dst, 'DST')
        converted = convert_official_classifier(read_checkpoint(args.src), args.src,
                                                args.state_key)
    torch.save(converted, args.dst)
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    main()
