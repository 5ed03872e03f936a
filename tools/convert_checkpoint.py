"""Convert an official VSSD classification checkpoint into an mmpretrain checkpoint.

Usage: python tools/convert_checkpoint.py SRC.pth DST.pth [--state-key model|model_ema]
The result loads into configs whose model is ImageClassifier + VSSD(out_indices=(3,)) +
GlobalAveragePooling + LinearClsHead. DST must not exist (nothing is overwritten).
"""
import argparse
import os.path as osp

import torch

from vssd_mm.models.checkpoint import official_classifier_to_mmpretrain, select_state_dict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--state-key', choices=['model', 'model_ema'], default=None,
                        help='entry of the official file (default: model)')
    args = parser.parse_args(argv)
    if osp.exists(args.dst):
        raise SystemExit(f'error: {args.dst} exists; choose another output path')
    ckpt = torch.load(args.src, map_location='cpu', weights_only=True)
    state = select_state_dict(ckpt, args.state_key)
    if 'head.weight' not in state:
        raise SystemExit(f'error: {args.src} has no classifier head (head.weight); it is not an '
                         'official VSSD classification checkpoint')
    torch.save({'state_dict': official_classifier_to_mmpretrain(state),
                'meta': dict(converted_from=osp.basename(args.src))}, args.dst)
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    main()
