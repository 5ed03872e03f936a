"""Evaluate a checkpoint with an OpenMMLab config (mmdet, mmseg or mmpretrain; the config's
default_scope decides). Usage: python tools/test.py CONFIG CHECKPOINT|URL [--work-dir DIR] ..."""
import argparse

from vssd_mm.allocator import reuse_large_blocks
from vssd_mm.arguments import non_negative_float
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import build_runner, exit_on_error, load_config, prepare_test_config
from vssd_mm.engine.cli import add_common_arguments, parse_with_common
from vssd_mm.engine.distributed import quiet_when_rank_zero_stopped
from vssd_mm.engine.errors import undecodable_images_named


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or its URL (http/https: downloaded '
                        'once into the torch hub cache; other mmengine schemes too)')
    parser.add_argument('--state-key', choices=['model', 'model_ema'],
                        help='official classification checkpoints: evaluate their live '
                        '(model, default) or EMA (model_ema) weights')
    parser.add_argument('--work-dir', help='directory for the evaluation logs and metrics')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation: the config\'s tta_model over tta_pipeline')
    parser.add_argument('--out', help='dump all predictions into this .pkl file '
                        '(mmseg: or a directory of prediction PNGs)')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--show-dir', help='draw predictions into this folder (mmdet/mmpretrain: '
                        'inside the run folder of the work dir)')
    parser.add_argument('--wait-time', type=non_negative_float, default=2.,
                        help='seconds per shown image')
    parser.add_argument('--skip-data-check', action='store_true',
                        help='skip the check of the datasets at the start (tools/check_dataset.py '
                        'runs it on its own, in full)')
    add_common_arguments(parser)
    return parse_with_common(parser, argv)


def main(argv=None):
    filter_known_warnings()
    with exit_on_error(), quiet_when_rank_zero_stopped():
        args = parse_args(argv)
        cfg = load_config(args.config, args.cfg_options)
        cfg = prepare_test_config(cfg, args.config, args.checkpoint, work_dir=args.work_dir,
                                  launcher=args.launcher, tta=args.tta, out=args.out,
                                  show=args.show, show_dir=args.show_dir,
                                  wait_time=args.wait_time, state_key=args.state_key,
                                  data_check=not args.skip_data_check)
        with undecodable_images_named():
            build_runner(cfg, strict_load_from=True).test()


if __name__ == '__main__':
    reuse_large_blocks()  # this process only, CPU runs only: see vssd_mm.allocator
    main()
