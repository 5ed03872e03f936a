"""Export what an mmpretrain / mmseg / mmdet config builds to ONNX (torch's default exporter,
dynamic batch, height and width) and check the file in onnxruntime on a second size.

    python tools/export_onnx.py CONFIG [CHECKPOINT|URL] --out FILE [--shape H W]
                                [--check-shape H W] [--cfg-options ...]

Needs `pip install -e .[deploy]`.
"""
import argparse
import os
import os.path as osp
import textwrap

from vssd_mm.arguments import positive_int
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import exit_on_error, load_config
from vssd_mm.engine.cli import add_common_arguments
from vssd_mm.engine.paths import check_file_to_write

EPILOG = textwrap.dedent("""\
    The file's input 'image' is the image as the config's test pipeline loads and resizes it:
    float32 (batch, 3, H, W), pixel values 0-255, channels in the loader's order - BGR for
    OpenMMLab's LoadImageFromFile (as cv2.imread reads a file) - unpadded; H and W in
    [64, 2048] ([128, 2048] for mmdet). The config's data preprocessor (channel order, mean,
    std, padding to its size divisor) is inside the file. Outputs: classifier logits (before
    softmax); segmentation logits at the input's size (whole-image inference; resize them to
    the original image's size as mmseg does); or (mmdet) the backbone + neck features of the
    padded input.""")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?',
                        help='weights to export (file or http(s) URL); random weights without')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=positive_int, nargs=2, default=(224, 224),
                        metavar=('H', 'W'),
                        help='the size traced (the file accepts any size in the range)')
    parser.add_argument('--check-shape', type=positive_int, nargs=2, metavar=('H', 'W'),
                        help='the size onnxruntime is checked at (default: H+32, W+64)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing --out file')
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if osp.exists(args.out) and not args.force:
        parser.error(f'{args.out} exists; pass --force to overwrite it or choose another --out')
    with exit_on_error():
        check_file_to_write(args.out, '--out', ('.onnx', ))
    return args


def main(argv=None):
    with exit_on_error():  # a --cfg-options mistake
        args = parse_args(argv)
    filter_known_warnings()
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise SystemExit(f'error: ONNX export needs the deploy extra ({err.name} is missing): '
                         'pip install -e ".[deploy]"') from None
    from vssd_mm.analysis.model_builder import build_model
    from vssd_mm.deploy.onnx_export import MAX_SIZE, MIN_SIZE, TASKS, ImageToOutputs, export_onnx
    from vssd_mm.engine.evaluated_checkpoint import load_into

    with exit_on_error():
        cfg = load_config(args.config, args.cfg_options)
        model, scope = build_model(cfg)
        if scope not in TASKS:
            raise SystemExit(f'error: {args.config} has default_scope={scope!r}; export_onnx.py '
                             f'exports mmpretrain, mmseg and mmdet configs')
        if args.checkpoint:
            load_into(model, args.checkpoint, osp.basename(args.config))
    for option in ('shape', 'check_shape'):
        size = getattr(args, option)
        if size is not None and not all(MIN_SIZE[scope] <= s <= MAX_SIZE for s in size):
            raise SystemExit(f'error: --{option.replace("_", "-")} must be within '
                             f'[{MIN_SIZE[scope]}, {MAX_SIZE}] for a {scope} config, got {size}')
    with exit_on_error():  # a data preprocessor or test mode the file cannot reproduce
        module = ImageToOutputs(model, scope)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    names, check = export_onnx(module, args.out, args.shape, args.check_shape)
    size_mib = osp.getsize(args.out) / 2 ** 20
    print(f'written: {args.out} ({size_mib:.1f} MiB): {TASKS[scope]} '
          f'[{", ".join(names)}] of image (batch, 3, H, W) as the test pipeline loads it '
          f'(BGR for LoadImageFromFile, 0-255), H and W in '
          f'[{MIN_SIZE[scope]}, {MAX_SIZE}]')
    print(f'onnxruntime vs PyTorch at {"x".join(map(str, check.shape))}: max abs error '
          f'{check.max_abs_error:.2e}, max relative error {check.max_rel_error:.2e}')


if __name__ == '__main__':
    main()
