"""Config preparation and Runner construction behind ``tools/train.py`` and ``tools/test.py``.

The config's ``default_scope`` (``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``) decides which library
the Runner builds from, so one tool set serves all three.
"""
import logging
import os.path as osp
import time
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from ..allocator import decision_line
from .cfg_options import check_cfg_options
from .checked_runner import checked_runner_class
from .config_file import read_config
from .data_check import check_data, raise_for_problems
from .distributed import decided_by_rank_zero, start_processes
from .errors import ToolError
from .evaluated_checkpoint import check_fits_once, read_training_checkpoint, resolve_test_checkpoint
from .evaluation_flags import (check_test_output, enable_output, enable_tta,
                               enable_visualization)
from .mmcv_cuda import check_mmcv_cuda_ops
from .paths import check_file_to_read, check_folder_to_write
from .preflight import build_model_checked, check_datasets, check_pretrained
from .schedule import check_schedule_builds, scale_schedule, schedule_outside_the_run


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config file and merge ``--cfg-options`` into it."""
    check_file_to_read(path, 'config file')
    cfg = read_config(path)
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    return cfg


def _set_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> None:
    # priority: command line > config > ./work_dirs/<config name>
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
    check_folder_to_write(cfg.work_dir, '--work-dir' if work_dir is not None else 'work dir')


def _log_heap() -> None:
    # the tools' allocator setting (vssd_mm.allocator), said once per job
    line = decision_line()
    if line:
        print_log(line, logger='current')


def _check_data(cfg: Config, config_path: str, splits) -> None:
    """The data check's fast mode (``data_check``): a problem stops the run with one line."""
    start = time.perf_counter()
    report = check_data(cfg, splits)
    for note in report.notes:
        print_log(f'data check: {note}', logger='current')
    raise_for_problems(report, config_path)
    checked = sum(n for n, _ in report.counts.values())
    print_log(f'data check: {len(report.counts)} checks of {checked} items passed in '
              f'{time.perf_counter() - start:.1f} s (--skip-data-check skips it)',
              logger='current')


def prepare_train_config(cfg: Config, config_path: str, *, work_dir: Optional[str] = None,
                         resume: Optional[str] = None, amp: bool = False,
                         auto_scale_lr: bool = False, launcher: str = 'none',
                         epochs: Optional[int] = None, iters: Optional[int] = None,
                         data_check: bool = True) -> Config:
    """Apply the train tool's flags to ``cfg`` (in place) and return it; in a multi-process run
    (``launcher``) rank 0 alone checks and decides and every rank returns rank 0's config
    (``distributed.decided_by_rank_zero``).

    Args:
        resume: ``None`` (start fresh), ``'auto'`` (latest checkpoint in the work dir) or the path
            of a checkpoint to resume from.
        amp: train with mixed precision (``AmpOptimWrapper``, dynamic loss scale); CUDA only.
        auto_scale_lr: scale the learning rate by ``total batch / auto_scale_lr.base_batch_size``.
        epochs, iters: train for this many epochs (epoch-based configs) or iterations
            (iteration-based), the schedule scaled with the run (``schedule.scale_schedule``).
        data_check: check the datasets first (``data_check.check_data``, fast mode).

    Raises ``ToolError`` when the datasets or pretrained weights the config names are not on
    disk or a flag cannot apply, ``MmcvCudaOpsError`` when the model uses mmcv ops, will run on
    a GPU and mmcv's ops were compiled without CUDA, and the checkpoint errors of a ``resume``
    file that cannot be read or does not fit; in the other ranks of a multi-process run,
    ``StoppedByRankZero`` when rank 0 raised.
    """
    cfg.launcher = launcher
    start_processes(cfg, launcher)
    return decided_by_rank_zero(lambda: _prepare_train(
        cfg, config_path, work_dir=work_dir, resume=resume, amp=amp, auto_scale_lr=auto_scale_lr,
        epochs=epochs, iters=iters, data_check=data_check))


def _prepare_train(cfg: Config, config_path: str, *, work_dir, resume, amp, auto_scale_lr, epochs,
                   iters, data_check) -> Config:
    _set_work_dir(cfg, config_path, work_dir)
    _log_heap()
    if epochs is not None or iters is not None:
        print_log(scale_schedule(cfg, epochs, iters), logger='current')
    else:
        check_schedule_builds(cfg)
        warning = schedule_outside_the_run(cfg)
        if warning:
            print_log(warning, logger='current', level=logging.WARNING)
    check_datasets(cfg, ['train_dataloader'] + (['val_dataloader'] if cfg.get('val_cfg') else []))
    if data_check:
        _check_data(cfg, config_path, ['train'] + (['val'] if cfg.get('val_cfg') else []))
    model = build_model_checked(cfg)
    check_mmcv_cuda_ops(model)
    check_pretrained(cfg)
    if amp:
        if not torch.cuda.is_available():
            raise ToolError(
                '--amp needs a CUDA GPU: mmengine\'s AmpOptimWrapper refuses the CPU, and fp16 '
                'autocast does not run there (bf16 on CPU is slower than fp32). Drop --amp to train in '
                'fp32 on this machine.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ToolError(
                '--auto-scale-lr needs `auto_scale_lr = dict(enable=False, base_batch_size=N)` '
                'in the config (N: the total batch size the learning rate was tuned for).')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        if not osp.isfile(resume):
            raise ToolError(f'--resume checkpoint not found: {resume}')
        # resuming needs the whole model: check before anything is built or written
        check_fits_once(model, read_training_checkpoint(resume), resume, config_path)
        cfg.resume, cfg.load_from = True, resume
    return cfg


def prepare_test_config(cfg: Config, config_path: str, checkpoint: str, *,
                        work_dir: Optional[str] = None, launcher: str = 'none', tta: bool = False,
                        out: Optional[str] = None, show: bool = False,
                        show_dir: Optional[str] = None, wait_time: float = 2.,
                        state_key: Optional[str] = None, data_check: bool = True) -> Config:
    """Apply the test tool's flags to ``cfg`` (in place) and return it.

    Args:
        checkpoint: a local file, an http(s) URL (downloaded once into torch's hub cache) or
            another mmengine scheme; official classification files are converted for mmpretrain
            configs (``state_key`` picks their 'model' or 'model_ema' weights).
        tta: test with ``cfg.tta_model`` over the views of ``cfg.tta_pipeline``.
        out: also dump every prediction into this ``.pkl`` file (mmseg: or a folder of PNGs).
        show, show_dir, wait_time: draw predictions on screen (``wait_time`` seconds each) and/or
            into ``show_dir``; see ``evaluation_flags.enable_visualization``.

    In a multi-process run rank 0 alone checks and decides, as in ``prepare_train_config``.
    """
    cfg.launcher = launcher
    start_processes(cfg, launcher)
    cfg = decided_by_rank_zero(lambda: _prepare_test(
        cfg, config_path, checkpoint, work_dir=work_dir, tta=tta, out=out, show=show,
        show_dir=show_dir, wait_time=wait_time, state_key=state_key, data_check=data_check))
    load_from = cfg.get('load_from')
    if load_from and '://' not in load_from and not osp.isfile(load_from):
        # a node other than rank 0's, without its files (a URL's download, a converted official
        # file): fetch and convert here too
        model_cfg = cfg.model.module if tta else cfg.model
        cfg.load_from = resolve_test_checkpoint(cfg, checkpoint,
                                                build_model_checked(cfg, model_cfg), state_key,
                                                config_path)
    return cfg


def _prepare_test(cfg: Config, config_path: str, checkpoint: str, *, work_dir, tta, out, show,
                  show_dir, wait_time, state_key, data_check) -> Config:
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise ToolError(f'checkpoint not found: {checkpoint}')
    _set_work_dir(cfg, config_path, work_dir)
    _log_heap()
    if out:
        check_test_output(cfg, out)
    if show_dir:
        # mmdet draws into the run's folder inside the work dir; the others take the path as it is
        check_folder_to_write(osp.join(cfg.work_dir, show_dir)
                              if cfg.get('default_scope') == 'mmdet' else show_dir, '--show-dir')
    check_datasets(cfg, ['test_dataloader'])
    if data_check:
        _check_data(cfg, config_path, ['test'])
    model = build_model_checked(cfg)
    check_mmcv_cuda_ops(model)
    if tta:
        enable_tta(cfg)
    if out:
        enable_output(cfg, out)
    if show or show_dir:
        enable_visualization(cfg, show, show_dir, wait_time)
    # last of the checks: it may download, and builds the model once to compare
    cfg.load_from = resolve_test_checkpoint(cfg, checkpoint, model, state_key, config_path)
    return cfg


def build_runner(cfg: Config, *, strict_load_from: bool = False,
                 epochs: Optional[int] = None, iters: Optional[int] = None):
    """Build the Runner a config asks for (``runner_type`` or mmengine's default Runner) with the
    checkpoint handling of ``checked_runner.CheckedLoading``: the user's own mmengine checkpoints
    (``resume`` / ``load_from``) read under torch >= 2.6's weights-only loading and checked
    before loading; with ``strict_load_from`` (tools/test.py) the ``load_from`` file must fit the
    whole model. ``epochs`` / ``iters``: the length ``prepare_train_config`` scaled the schedule
    to; a resumed run then follows that schedule (``runner_schedule.ScheduleOfTheRun``)."""
    runner = checked_runner_class(cfg.get('runner_type')).from_cfg(cfg)
    runner.strict_load_from = strict_load_from
    if epochs is not None or iters is not None:
        runner.schedule_flag = f'--epochs {epochs}' if epochs is not None else f'--iters {iters}'
    return runner
