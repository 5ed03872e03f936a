"""Evaluate a checkpoint with an OpenMMLab config (mmdet, mmseg or mmpretrain; the config's
default_scope decides). Usage: python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] ..."""
import argparse
import os

from mmengine.config import DictAction

from vssd_mm.compat import filter_known_warnings
from vssd_mm.engine import build_runner, load_config, prepare_test_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation logs and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (tools/dist_test.sh uses pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    filter_known_warnings()
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    prepare_test_config(cfg, args.config, args.checkpoint, work_dir=args.work_dir,
                        launcher=args.launcher)
    build_runner(cfg).test()


if __name__ == '__main__':
    main()
