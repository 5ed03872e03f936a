"""Peak memory of instance-segmentation TTA (``InstanceSegTTAModel``: Mask R-CNN views merged
with their masks) against a plain test step, on synthetic predictions at a COCO-like size. Prints
a table (see benchmarks/support/tta_memory.py for what is measured).

    python -m benchmarks.tta_memory [--height 800 --width 1333 --dets 100 --views 6]
"""
import argparse

from vssd_mm.arguments import positive_int
from vssd_mm.compat import filter_known_warnings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--height', type=positive_int, default=800)
    parser.add_argument('--width', type=positive_int, default=1333)
    parser.add_argument('--dets', type=positive_int, default=100,
                        help='detections per view (Mask R-CNN keeps up to 100)')
    parser.add_argument('--views', type=positive_int, default=6,
                        help='views per image (the configs: 3 scales x flip)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-dense', action='store_true',
                        help='skip the dense formulation (views x dets x H x W bytes and more)')
    args = parser.parse_args(argv)
    filter_known_warnings()
    from benchmarks.support.tta_memory import measure, table
    rows = measure(args.height, args.width, args.dets, args.views, args.device,
                   dense=not args.no_dense)
    print(table(rows, args.height, args.width, args.dets))


if __name__ == '__main__':
    # glibc's default malloc (no vssd_mm.allocator here): freed large blocks go back to the OS,
    # so the resident set follows what is alive
    main()
