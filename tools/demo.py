"""The README's demo command (`make demo`).

Until the detection demo lands, this runs the smallest real thing that exists: the VSSD family
built through the mmdet / mmseg / mmpretrain registries, checked against the paper's parameter
counts, and run on a classification-size and a segmentation-test-size image on this machine.
"""
import argparse

import torch

from vssd_mm.analysis import summarize_backbone
from vssd_mm.compat import filter_known_warnings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--archs', nargs='+', default=['micro', 'tiny', 'small', 'base'])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    filter_known_warnings()

    import vssd_mm  # noqa: F401  (registers VSSD once)
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG
    for name, registry in (('mmdet', DET), ('mmseg', SEG), ('mmpretrain', CLS)):
        model = registry.build(dict(type='VSSD', arch='micro'))
        print(f'{name:10s} MODELS.build(dict(type="VSSD")) -> {type(model).__module__}.'
              f'{type(model).__name__}')

    sizes = [(224, 224), (512, 683)]
    print(f'\nVSSD on {args.device} (batch 1; outputs at strides 4/8/16/32)')
    header = (f'{"arch":6s} {"classifier params":>18s} {"paper":>6s} {"backbone params":>16s} '
              + ' '.join(f'{f"{h}x{w} s":>10s}' for h, w in sizes) + '  stage-4 map at 512x683')
    print(header + '\n' + '-' * len(header))
    for arch in args.archs:
        row = summarize_backbone(arch, sizes, device=args.device)
        print(f'{arch:6s} {row["classifier_params"]:>18,d} {row["paper_params_m"]:>5d}M '
              f'{row["backbone_params"]:>16,d} '
              + ' '.join(f'{s:>10.3f}' for s in row['seconds'])
              + f'  {row["shapes"][1][-1]}')


if __name__ == '__main__':
    main()
