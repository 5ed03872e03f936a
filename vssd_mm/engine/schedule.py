"""A training run of another length with the schedule scaled to it (``tools/train.py --epochs N`` /
``--iters N``), and the warning when only the length was changed (``--cfg-options
train_cfg.max_epochs=N`` leaves warm-ups, milestones and cosine ends where they were).

Every time of every ``param_scheduler`` entry (``begin``, ``end``, ``milestones``, ``T_max``,
``step_size``, ``total_steps``) is multiplied by new length / old length, whatever its unit (an
iteration-based warm-up in an epoch-based run scales too: the iterations per epoch do not change),
rounded to whole units, spans kept at least one unit long and milestones inside the run. The
validation and checkpoint intervals follow.
"""
from typing import List, Optional, Tuple

from mmengine.config import Config

from .errors import ToolError

TIMES = ('begin', 'end', 'T_max', 'step_size', 'total_steps')
NO_END = 1e8  # mmengine's INF and anything like it: "until the run ends"


def run_length(cfg: Config) -> Tuple[str, int]:
    """('epochs', max_epochs) or ('iters', max_iters) of ``cfg.train_cfg``."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_epochs' in train_cfg:
        return 'epochs', int(train_cfg['max_epochs'])
    if 'max_iters' in train_cfg:
        return 'iters', int(train_cfg['max_iters'])
    raise ToolError('the config\'s train_cfg has neither max_epochs nor max_iters')


def _scaled(value, factor: float) -> int:
    # a positive time stays positive: a boundary two schedulers share (warm-up end, cosine
    # begin) maps to the same unit, and no span collapses to nothing
    return max(int(round(value * factor)), 1 if value > 0 else 0)


def _schedulers(cfg: Config) -> List[dict]:
    schedulers = cfg.get('param_scheduler') or []
    return [schedulers] if isinstance(schedulers, dict) else list(schedulers)


def _in_run_units(scheduler: dict, unit: str) -> bool:
    return (unit == 'epochs') == bool(scheduler.get('by_epoch', True))


def _scale_scheduler(scheduler: dict, factor: float, unit: str, length: int) -> List[str]:
    """Scale one scheduler in place; returns 'field old -> new' for every change."""
    changes = []
    same_unit = _in_run_units(scheduler, unit)
    for key in TIMES:
        value = scheduler.get(key)
        if value is None or value >= NO_END:
            continue
        new = _scaled(value, factor)
        if same_unit:
            new = min(new, length if key != 'begin' else length - 1)
        scheduler[key] = new
        changes.append(f'{key} {value} -> {new}')
    if 'begin' in scheduler and scheduler.get('end', NO_END) <= scheduler['begin']:
        scheduler['end'] = scheduler['begin'] + 1
    if scheduler.get('milestones'):
        old = list(scheduler['milestones'])
        top = length - 1 if same_unit and length > 1 else None  # the last epoch that can step
        new = [_scaled(m, factor) for m in old]
        new = [min(m, top) for m in new] if top is not None else new
        scheduler['milestones'] = new
        changes.append(f'milestones {old} -> {new}')
    return changes


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
    schedulers = _schedulers(cfg)
    for scheduler in schedulers:
        changes = _scale_scheduler(scheduler, factor, unit, new)
        if changes:
            parts.append(f'{scheduler.get("type", "scheduler")}: {", ".join(changes)}')
    for owner, key in ((cfg.train_cfg, 'val_interval'),
                       (cfg.get('default_hooks', {}).get('checkpoint') or {}, 'interval')):
        if key in owner and owner[key] > 1:
            value = owner[key]
            owner[key] = min(_scaled(value, factor), new) if unit == 'iters' else \
                min(value, new)
            if owner[key] != value:
                parts.append(f'{key} {value} -> {owner[key]}')
    return 'schedule scaled to the run: ' + '; '.join(parts)


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
