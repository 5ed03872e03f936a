"""Train a model from an OpenMMLab config (mmdet, mmseg or mmpretrain; the config's default_scope
decides). Usage: python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] ..."""
import argparse

from vssd_mm.allocator import reuse_large_blocks
from vssd_mm.arguments import positive_int
from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import build_runner, exit_on_error, load_config, prepare_train_config
from vssd_mm.engine.cli import add_common_arguments, parse_with_common
from vssd_mm.engine.distributed import quiet_when_rank_zero_stopped
from vssd_mm.engine.errors import undecodable_images_named


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints '
                        '(default: the config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or without a value from the latest '
                        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training (CUDA only)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual total batch size')
    length = parser.add_mutually_exclusive_group()
    length.add_argument('--epochs', type=positive_int, metavar='N',
                        help='train N epochs, the schedule (warm-up, milestones, cosine end, '
                        'validation interval) scaled with the run (epoch-based configs)')
    length.add_argument('--iters', type=positive_int, metavar='N',
                        help='the same for iteration-based configs')
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
        cfg = prepare_train_config(cfg, args.config, work_dir=args.work_dir, resume=args.resume,
                                   amp=args.amp, auto_scale_lr=args.auto_scale_lr,
                                   launcher=args.launcher, epochs=args.epochs, iters=args.iters,
                                   data_check=not args.skip_data_check)
        with undecodable_images_named():
            build_runner(cfg, epochs=args.epochs, iters=args.iters).train()


if __name__ == '__main__':
    reuse_large_blocks()  # this process only, CPU runs only: see vssd_mm.allocator
    main()
