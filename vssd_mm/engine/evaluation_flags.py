"""``tools/test.py``'s ``--tta``, ``--out`` and ``--show`` / ``--show-dir``, applied to a config.

Each library names these things differently (mmdet's ``DetVisualizationHook(test_out_dir)``,
mmseg's visualizer ``save_dir``, mmpretrain's ``VisualizationHook(enable, out_dir)``); the
config's ``default_scope`` picks the library, and the flags mean what they mean in its own
``tools/test.py``.
"""
from typing import Optional

from mmengine.config import Config, ConfigDict

from .errors import ToolError
from .paths import check_file_to_write, check_folder_to_write

PICKLE_SUFFIXES = ('.pkl', '.pickle')


def _scope(cfg: Config) -> str:
    return cfg.get('default_scope') or 'mmengine'


def innermost_dataset(dataset_cfg: dict) -> dict:
    """The dataset config inside wrappers (RepeatDataset, ClassBalancedDataset, ...)."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def enable_tta(cfg: Config) -> Config:
    """Wrap ``cfg.model`` in ``cfg.tta_model`` and give the test set ``cfg.tta_pipeline``."""
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise ToolError(f'--tta needs {" and ".join(missing)} in the config '
                        '(the configs in configs/ define both; see configs/mmdet/_base_/'
                        'mask_rcnn_tta.py for an example)')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    innermost_dataset(cfg.test_dataloader.dataset).pipeline = cfg.tta_pipeline
    return cfg


def _add_test_metric(cfg: Config, metric: dict) -> None:
    evaluator = cfg.test_evaluator
    metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
    cfg.test_evaluator = metrics + [metric]


def check_test_output(cfg: Config, out: str) -> None:
    """``--out`` can be written: a ``.pkl`` file, or for mmseg a folder of label PNGs."""
    if out.endswith(PICKLE_SUFFIXES) or _scope(cfg) != 'mmseg':
        check_file_to_write(out, '--out', PICKLE_SUFFIXES)
    else:
        check_folder_to_write(out, '--out')


def enable_output(cfg: Config, out: str) -> Config:
    """``--out``: a ``.pkl`` file of all predictions; for mmseg also a directory of label PNGs."""
    check_test_output(cfg, out)
    if out.endswith(PICKLE_SUFFIXES):
        dump = 'DumpDetResults' if _scope(cfg) == 'mmdet' else 'DumpResults'
        _add_test_metric(cfg, dict(type=dump, out_file_path=out))
    else:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def enable_visualization(cfg: Config, show: bool, show_dir: Optional[str],
                         wait_time: float) -> Config:
    """Draw test predictions: on screen (``show``) and/or as images (``show_dir``).

    ``show_dir`` is relative to the run's folder inside the work dir for mmdet, and a plain path
    for mmseg and mmpretrain (as in their own tools).
    """
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise ToolError('--show/--show-dir need a visualization hook in '
                        'default_hooks (e.g. dict(type="DetVisualizationHook"))')
    hook = hooks['visualization']
    scope = _scope(cfg)
    if scope == 'mmpretrain':
        hook.update(enable=True, show=show, wait_time=wait_time, interval=1)
        if show_dir:
            hook['out_dir'] = show_dir
        return cfg
    hook.update(draw=True, show=show, wait_time=wait_time, interval=1)
    if show_dir:
        if scope == 'mmseg':
            cfg.visualizer['save_dir'] = show_dir
        else:
            hook['test_out_dir'] = show_dir
    return cfg
