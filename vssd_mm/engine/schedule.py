"""A training run of another length with the schedule scaled to it (``tools/train.py --epochs N`` /
``--iters N``), and the warning when only the length was changed (``--cfg-options
train_cfg.max_epochs=N`` leaves warm-ups, milestones and cosine ends where they were).

The times (``begin``, ``end``, ``milestones``, ``T_max``, ``step_size``, ``total_steps``) of every
``param_scheduler`` entry counted in the run's unit are multiplied by new length / old length:

- Whole units, rounded, for schedulers stepped in that unit. A boundary two schedulers share (a
  warm-up's end, the decay's begin) maps to one value, so schedulers that followed each other still
  do and never overlap. A scheduler left with fewer than two steps is dropped (named in the log
  line): mmengine's first step of a scheduler sets its start value (``LinearLR``: the start
  factor), so a one-step warm-up would leave every later step at ``start_factor * lr``.
- Fractions of an epoch for ``begin`` / ``end`` / ``T_max`` of epoch schedulers the runner
  converts to iterations (``convert_to_iter_based=True``): 20 warm-up epochs of 300 become 0.0667
  of 1 epoch, as many iterations as that fraction of the epoch holds. The epoch's length is known
  only to the Runner: ``whole_iteration_spans`` drops there what would last fewer than two
  iterations.

Schedulers counted in the other unit keep their times: an iteration warm-up (``by_epoch=False``,
e.g. mmdet's 1000 iterations) in an epoch-based run lasts as many iterations in a run of any
length. The validation and checkpoint intervals follow the run.
"""
from typing import List, Optional, Tuple

from mmengine.config import Config

from .errors import ToolError

TIMES = ('begin', 'end', 'T_max', 'step_size', 'total_steps')
FRACTIONAL = ('begin', 'end', 'T_max')  # times mmengine multiplies by the epoch length unrounded
NO_END = 1e8  # mmengine's INF and anything like it: "until the run ends"
MIN_STEPS = 2  # fewer steps only apply a scheduler's start value (see the module docstring)


def run_length(cfg: Config) -> Tuple[str, int]:
    """('epochs', max_epochs) or ('iters', max_iters) of ``cfg.train_cfg``."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_epochs' in train_cfg:
        return 'epochs', int(train_cfg['max_epochs'])
    if 'max_iters' in train_cfg:
        return 'iters', int(train_cfg['max_iters'])
    raise ToolError('the config\'s train_cfg has neither max_epochs nor max_iters')


def _schedulers(cfg: Config) -> List[dict]:
    schedulers = cfg.get('param_scheduler') or []
    return [schedulers] if isinstance(schedulers, dict) else list(schedulers)


def _in_run_units(scheduler: dict, unit: str) -> bool:
    return (unit == 'epochs') == bool(scheduler.get('by_epoch', True))


def _converted(scheduler: dict) -> bool:
    return bool(scheduler.get('by_epoch', True) and scheduler.get('convert_to_iter_based'))


def _shown(value) -> str:
    return f'{value:.4g}' if isinstance(value, float) else str(value)


def _scale_scheduler(scheduler: dict, factor: float, length: int) -> List[str]:
    """Scale one scheduler counted in the run's unit in place (``length``: the new run's);
    returns 'field old -> new' for every change."""
    changes = []
    fractional = _converted(scheduler)
    for key in TIMES:
        value = scheduler.get(key)
        if value is None or value >= NO_END:
            continue
        if fractional and key in FRACTIONAL:
            new = value * factor
            new = int(new) if new == int(new) else new
        else:
            new = int(round(value * factor))
            if key not in ('begin', 'end'):
                new = max(new, 1)  # periods and lengths stay positive
        if key in ('begin', 'end'):
            new = min(new, length)
        scheduler[key] = new
        changes.append(f'{key} {_shown(value)} -> {_shown(new)}')
    if scheduler.get('milestones'):
        old = list(scheduler['milestones'])
        top = max(length - 1, 1)  # the last epoch / iteration that can step
        new = [min(int(round(m * factor)), top) for m in old]
        scheduler['milestones'] = new
        changes.append(f'milestones {old} -> {new}')
    return changes


def _steps(scheduler: dict, length: int) -> float:
    """Steps from ``begin`` to ``end`` (the run's end when open), in the scheduler's unit."""
    end = scheduler.get('end', NO_END)
    return (length if end >= NO_END else end) - scheduler.get('begin', 0)


def scale_schedule(cfg: Config, epochs: Optional[int] = None, iters: Optional[int] = None) -> str:
    """Set the run's length to ``epochs`` (epoch-based configs) or ``iters`` (iteration-based) and
    scale the schedule with it (see the module docstring); returns the one log line that states
    the old and the new schedule."""
    unit, old = run_length(cfg)
    asked, new = ('epochs', epochs) if epochs is not None else ('iters', iters)
    if asked != unit:
        flag = '--epochs' if unit == 'epochs' else '--iters'
        raise ToolError(f'--{asked} does not apply: this config trains for {old} {unit} '
                        f'({"max_epochs" if unit == "epochs" else "max_iters"}); use {flag}')
    factor = new / old
    cfg.train_cfg[f'max_{unit}'] = new
    parts = [f'{old} -> {new} {unit}']
    kept = []
    for scheduler in _schedulers(cfg):
        name = scheduler.get('type', 'scheduler')
        if not _in_run_units(scheduler, unit):
            kept.append(scheduler)
            parts.append(f'{name}: {"iterations" if unit == "epochs" else "epochs"} kept')
            continue
        changes = _scale_scheduler(scheduler, factor, new)
        if not _converted(scheduler) and _steps(scheduler, new) < MIN_STEPS:
            parts.append(f'{name} dropped ({_shown(_steps(scheduler, new))} {unit}: fewer than '
                         f'{MIN_STEPS} steps)')
            continue
        kept.append(scheduler)
        if changes:
            parts.append(f'{name}: {", ".join(changes)}')
    if 'param_scheduler' in cfg:
        cfg.param_scheduler = kept
    for owner, key in ((cfg.train_cfg, 'val_interval'),
                       (cfg.get('default_hooks', {}).get('checkpoint') or {}, 'interval')):
        if key in owner and owner[key] > 1:
            value = owner[key]
            owner[key] = min(max(int(round(value * factor)), 1), new) if unit == 'iters' else \
                min(value, new)
            if owner[key] != value:
                parts.append(f'{key} {value} -> {owner[key]}')
    return 'schedule scaled to the run: ' + '; '.join(parts)


def whole_iteration_spans(schedulers: List[dict], epoch_length: int,
                          max_epochs: int) -> Tuple[List[dict], List[str]]:
    """The Runner's half of the scaling, once ``epoch_length`` (iterations per epoch) is known:
    the entries of ``schedulers`` (config dicts) that mmengine would convert to fewer than two
    iterations (``int(begin * epoch_length)`` to ``int(end * epoch_length)``, ``end`` defaulting
    to ``max_epochs``) are left out. Returns (the kept entries, 'Type: N iterations' for each one
    left out)."""
    kept, dropped = [], []
    for scheduler in schedulers:
        if isinstance(scheduler, dict) and _converted(scheduler):
            end = scheduler.get('end', NO_END)
            end = max_epochs if end >= NO_END else end
            steps = int(end * epoch_length) - int(scheduler.get('begin', 0) * epoch_length)
            if steps < MIN_STEPS:
                dropped.append(f'{scheduler.get("type")}: {steps} iterations')
                continue
        kept.append(scheduler)
    return kept, dropped


def schedule_outside_the_run(cfg: Config) -> Optional[str]:
    """One warning line when a scheduler begins, ends or steps beyond the run's length (a length
    changed without ``--epochs`` / ``--iters``), else None."""
    unit, length = run_length(cfg)
    schedulers = _schedulers(cfg)
    outside = []
    for i, scheduler in enumerate(schedulers):
        if not _in_run_units(scheduler, unit):
            continue  # iterations in an epoch-based run: the epoch length is not known here
        late = [f'{key} {scheduler[key]}' for key in ('begin', 'end')
                if key in scheduler and scheduler[key] < NO_END
                and scheduler[key] > (length - 1 if key == 'begin' else length)]
        late += [f'milestone {m}' for m in scheduler.get('milestones') or [] if m >= length]
        if late:
            outside.append(f'param_scheduler[{i}] ({scheduler.get("type")}): {", ".join(late)}')
    if not outside:
        return None
    flag = '--epochs' if unit == 'epochs' else '--iters'
    return (f'the run is {length} {unit} but {"; ".join(outside)} lie beyond it and never take '
            f'effect; tools/train.py {flag} {length} scales the schedule with the run')


def check_schedule_builds(cfg: Config) -> None:
    """``ToolError`` when a scheduler that runs to the run's end begins at or after it (a run
    shortened without ``--epochs`` / ``--iters``): mmengine cannot build it (end <= begin)."""
    unit, length = run_length(cfg)
    for i, scheduler in enumerate(_schedulers(cfg)):
        open_ended = scheduler.get('end', NO_END) >= NO_END
        if _in_run_units(scheduler, unit) and open_ended and scheduler.get('begin', 0) >= length:
            flag = '--epochs' if unit == 'epochs' else '--iters'
            raise ToolError(
                f'the run is {length} {unit} but param_scheduler[{i}] '
                f'({scheduler.get("type")}) begins at {scheduler["begin"]} and runs to the '
                f'run\'s end, so it would end before it begins; tools/train.py {flag} {length} '
                'scales the schedule with the run')
