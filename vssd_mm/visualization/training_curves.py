"""Training curves from mmengine's JSON logs: the ``vis_data/<timestamp>.json`` that the LoggerHook
writes (``scalars.json`` beside it holds the same lines).

Each line is one record. A training record carries ``iter`` (the global iteration; ``epoch`` too
when the run logs by epoch), ``lr`` and the loss terms; a validation record carries the metrics
and ``step``, which is the epoch when the training records carry an epoch (mmengine's by-epoch
logging: ``LoggerHook(log_metric_by_epoch=True)``) and the iteration otherwise.
"""
import json
import math
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..engine.errors import ToolError

# bookkeeping in both kinds of records, never a curve of its own
NOT_CURVES = ('step', 'iter', 'epoch', 'time', 'data_time', 'memory', 'base_lr')
# validation metrics for which lower is better (the summary's "best"); all others: higher
LOWER_IS_BETTER = ('loss', 'mse', 'mae', 'rmse', 'error', 'err')


@dataclass
class RunLog:
    """One run's records: ``train[key] = [(iteration, value), ...]`` and ``val[key] = [(step,
    value), ...]`` where ``step`` counts ``val_unit``s (``'epoch'`` or ``'iteration'``)."""
    label: str
    path: str
    train: Dict[str, List[Tuple[int, float]]] = field(default_factory=dict)
    val: Dict[str, List[Tuple[int, float]]] = field(default_factory=dict)
    val_unit: str = 'iteration'

    def keys(self) -> List[str]:
        return list(self.train) + [k for k in self.val if k not in self.train]

    def series(self, key: str) -> Tuple[List[Tuple[int, float]], str]:
        """The ``(x, value)`` points of ``key`` and the unit of x."""
        if key in self.train:
            return self.train[key], 'iteration'
        return self.val.get(key, []), self.val_unit


def _run_folder_log(run_folder: str) -> Optional[str]:
    """``<run>/vis_data/<run>.json`` (the LoggerHook's), else ``<run>/vis_data/scalars.json``."""
    vis_data = osp.join(run_folder, 'vis_data')
    for name in (osp.basename(osp.normpath(run_folder)) + '.json', 'scalars.json'):
        if osp.isfile(osp.join(vis_data, name)):
            return osp.join(vis_data, name)
    return None


def _newest_run_log(work_dir: str) -> str:
    """The JSON log of the newest run in ``work_dir`` (run folders are named by their start time,
    ``YYYYMMDD_HHMMSS``, so the newest sorts last); a run folder itself is accepted too."""
    found = _run_folder_log(work_dir)
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))
    for run in reversed(runs):
        found = found or _run_folder_log(osp.join(work_dir, run))
    if found is None:
        raise ToolError(f'{work_dir} holds no mmengine JSON log (<run>/vis_data/<run>.json or '
                        'scalars.json): give the work dir of a run that logged at least once, or '
                        'the JSON file itself')
    return found


def find_log(path: str) -> str:
    """``path`` if it is a file; for a folder (a work dir or one run's folder) its newest run's
    JSON log."""
    if osp.isfile(path):
        return path
    if osp.isdir(path):
        return _newest_run_log(path)
    raise ToolError(f'{path} does not exist: give a work dir or a vis_data/*.json file')


def _run_label(path: str, given: str) -> str:
    if osp.isdir(given):  # the work dir's name (the run's folder name says only when it started)
        return osp.basename(osp.normpath(given)) or given
    return osp.splitext(osp.basename(path))[0]


def read_log(given: str) -> RunLog:
    """The records of the JSON log that ``given`` (a file or a work dir) names."""
    path = find_log(given)
    run = RunLog(label=_run_label(path, given), path=path)
    train_has_epoch, val_steps = False, []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ToolError(f'{path} line {number} is not JSON ({err.msg}): not an mmengine '
                                'JSON log?') from None
            if not isinstance(record, dict) or 'step' not in record:
                raise ToolError(f'{path} line {number} has no "step": not an mmengine JSON log')
            is_train = 'iter' in record
            train_has_epoch |= is_train and 'epoch' in record
            x = int(record['iter'] if is_train else record['step'])
            if not is_train:
                val_steps.append(x)
            into = run.train if is_train else run.val
            for key, value in record.items():
                if key not in NOT_CURVES and isinstance(value, (int, float)):
                    into.setdefault(key, []).append((x, float(value)))
    if train_has_epoch:
        run.val_unit = 'epoch'
    return run


def default_keys(runs: Sequence[RunLog]) -> List[str]:
    """Every loss term, the learning rate and every validation metric that any run logged, in
    that order."""
    keys = []
    for run in runs:
        keys += [k for k in run.train if 'loss' in k and k not in keys]
    keys += ['lr'] if any('lr' in run.train for run in runs) else []
    for run in runs:
        keys += [k for k in run.val if k not in keys]
    return keys


def check_keys(runs: Sequence[RunLog], keys: Sequence[str]) -> None:
    """Each run must have at least one of ``keys``; the error names the keys it has."""
    for run in runs:
        if not any(k in run.train or k in run.val for k in keys):
            raise ToolError(f'{run.path} has none of the keys {", ".join(keys) or "(none)"}; '
                            f'it has: {", ".join(run.keys()) or "no numeric keys"}')


def plot_curves(runs: Sequence[RunLog], keys: Sequence[str],
                size: Tuple[int, int] = (1200, 0), columns: int = 3):
    """A matplotlib ``Figure`` with one subplot per key and one line per run (labelled by run).

    ``size``: (width, height) in pixels at 100 dpi; height 0: 300 px per row of subplots.
    Returns the figure (its axes in ``keys`` order; ``line.get_xydata()`` are the logged points).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    check_keys(runs, keys)
    columns = max(1, min(columns, len(keys)))
    rows = math.ceil(len(keys) / columns)
    width, height = size[0], size[1] or 300 * rows
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, layout='constrained')
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, columns, i + 1)
        units = set()
        for number, run in enumerate(runs):
            points, unit = run.series(key)
            if points:  # a run keeps its colour in every subplot
                xs, ys = zip(*points)
                ax.plot(xs, ys, label=run.label, color=f'C{number % 10}',
                        marker='.' if len(points) < 30 else None)
                units.add(unit)
        ax.set_title(key)
        ax.set_xlabel(' / '.join(sorted(units)))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if key == 'lr' or key.endswith('_lr'):
            ax.ticklabel_format(axis='y', style='sci', scilimits=(-2, 3))
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize='small')
    return fig


def save_figure(fig, out: str) -> None:
    """Write ``fig`` as a PNG of its own pixel size."""
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(out, format='png', dpi=fig.dpi)


def _best(points: List[Tuple[int, float]], key: str) -> Tuple[int, float]:
    lower = any(word in LOWER_IS_BETTER for word in re.split(r'[^a-z0-9]+', key.lower()))
    return (min if lower else max)(points, key=lambda p: p[1])


def summary_rows(runs: Sequence[RunLog], keys: Optional[Sequence[str]] = None) -> List[list]:
    """Per run: the last logged ``loss`` (and its iteration), then per validation metric (of
    ``keys``, if given) its best value and where: ``[run, last loss, at, metric, best, at]``."""
    rows = []
    for run in runs:
        loss = run.train.get('loss')
        last = [f'{loss[-1][1]:.4g}', f'iter {loss[-1][0]}'] if loss else ['-', '-']
        metrics = [k for k in run.val if keys is None or k in keys]
        if not metrics:
            rows.append([run.label, *last, '-', '-', '-'])
        for i, key in enumerate(metrics):
            step, value = _best(run.val[key], key)
            head = [run.label, *last] if i == 0 else ['', '', '']
            rows.append([*head, key, f'{value:.4g}', f'{run.val_unit} {step}'])
    return rows


def summary_table(runs: Sequence[RunLog], keys: Optional[Sequence[str]] = None) -> str:
    """``summary_rows`` as aligned text with a header."""
    rows = [['run', 'last loss', 'at', 'metric', 'best', 'at'], *summary_rows(runs, keys)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
