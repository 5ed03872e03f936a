"""The Runner's part of the schedule our tools ask for (``ScheduleOfTheRun``, mixed into the Runner
that tools/train.py builds): iteration spans of a scaled schedule, and the schedule of a resumed
run.

Spans: ``schedule.scale_schedule`` leaves epoch schedulers that mmengine converts to iterations
at fractions of an epoch; ``build_param_scheduler`` leaves out those that the epoch's length turns
into fewer than two iterations (``schedule.whole_iteration_spans``).

Resume: mmengine's ``Runner.resume`` restores each parameter scheduler's whole state from the
checkpoint: its ``begin``, ``end``, ``T_max``, milestones as well as its step count, and the
optimizer's current values. A run resumed with ``--epochs N`` / ``--iters N`` would then go on
with the checkpoint's schedule (a 2-epoch cosine that has ended) although the log says the
schedule was scaled. And as mmengine's schedulers are chainable (each step multiplies the value
the previous step left), restoring the config's times alone would still continue from the old
schedule's value. ``ConfigSchedule`` therefore keeps the schedulers as the Runner built them
from the config (their state before any step, and the optimizer's starting values) and, after
mmengine's resume, either

- follows the config (``--epochs`` / ``--iters`` given, ``schedule_flag``): puts that state back
  and replays the steps the Runner's ``ParamSchedulerHook`` makes up to the resumed iteration
  (after every iteration the iteration-based schedulers, after every epoch the epoch-based ones,
  in the list's order), so from there on the values are those of a fresh run with the same flags;
- or keeps the checkpoint's, as mmengine does, and names in one warning line what differs from
  the config and the flag that follows the config instead.

Schedulers that step on validation metrics (``ReduceOnPlateau``) cannot be replayed: they keep
the checkpoint's state either way.
"""
import copy
import logging
import warnings
from collections import Counter
from typing import Dict, List, Optional

from mmengine.logging import print_log

from .schedule import run_length, whole_iteration_spans

SHAPE = ('begin', 'end', 'T_max', 'step_size', 'total_steps', 'milestones')


def _listed(param_schedulers) -> List:
    """The built schedulers (a list, or one list per optimizer) in the order
    ``ParamSchedulerHook`` steps them; none while they are still configs."""
    from mmengine.optim import _ParamScheduler
    groups = param_schedulers.values() if isinstance(param_schedulers, dict) \
        and 'type' not in param_schedulers else [param_schedulers]
    listed = []
    for group in groups:
        listed += list(group) if isinstance(group, (list, tuple)) else [group]
    return [s for s in listed if isinstance(s, _ParamScheduler)]


def _replayable(scheduler) -> bool:
    return not getattr(scheduler, 'need_val_args', False)


def _shape(state: dict) -> Dict[str, object]:
    shape = {key: state[key] for key in SHAPE if key in state}
    if 'milestones' in shape:  # MultiStepLR keeps them as a Counter
        shape['milestones'] = sorted(Counter(shape['milestones']).elements())
    return shape


def _values(schedulers) -> Dict[tuple, tuple]:
    """(optimizer id, param name) -> (optimizer, param name, [(value, initial value) per param
    group])."""
    values = {}
    for scheduler in schedulers:
        optimizer, name = scheduler.optimizer, scheduler.param_name
        values[(id(optimizer), name)] = (optimizer, name, [
            (group[name], group.get(f'initial_{name}')) for group in optimizer.param_groups])
    return values


class ConfigSchedule:
    """The schedule the Runner built from the config, kept across mmengine's ``resume``."""

    def __init__(self, runner):
        self.schedulers = [s for s in _listed(runner.param_schedulers) if _replayable(s)]
        self.states = [copy.deepcopy(s.state_dict()) for s in self.schedulers]
        self.values = _values(self.schedulers)

    def differences(self) -> List[str]:
        """'Type (unit): field checkpoint's (config: config's), ...' for each resumed scheduler
        (now holding the checkpoint's state) whose times differ from the config's; in the unit
        the Runner steps it (a converted epoch scheduler: iterations)."""
        found = []
        for scheduler, state in zip(self.schedulers, self.states):
            config, checkpoint = _shape(state), _shape(scheduler.state_dict())
            fields = [f'{key} {checkpoint.get(key)} (config: {config[key]})' for key in config
                      if checkpoint.get(key) != config[key]]
            if fields:
                unit = 'epochs' if scheduler.by_epoch else 'iterations'
                found.append(f'{type(scheduler).__name__} ({unit}): {", ".join(fields)}')
        return found

    def follow(self, runner) -> None:
        """Put the config's schedulers back and step them as a fresh run would have up to the
        Runner's resumed iteration (``runner.iter``; epochs: ``runner.epoch``)."""
        for scheduler, state in zip(self.schedulers, self.states):
            scheduler.load_state_dict(copy.deepcopy(state))
        for optimizer, name, groups in self.values.values():
            for group, (value, initial) in zip(optimizer.param_groups, groups):
                group[name] = value
                if initial is not None:
                    group[f'initial_{name}'] = initial
        epoch_length = (len(runner.train_dataloader) if run_length(runner.cfg)[0] == 'epochs'
                        else None)
        by_iter = [s for s in self.schedulers if not s.by_epoch]
        by_epoch = [s for s in self.schedulers if s.by_epoch]
        epochs = 0
        with warnings.catch_warnings():
            # the replay steps schedulers without optimizer steps, on purpose
            warnings.filterwarnings('ignore', message='Detected call of `scheduler.step()`')
            for i in range(1, runner.iter + 1):
                for scheduler in by_iter:
                    scheduler.step()
                if epoch_length and i % epoch_length == 0 and epochs < runner.epoch:
                    epochs += 1
                    for scheduler in by_epoch:
                        scheduler.step()
            for _ in range(epochs, runner.epoch if epoch_length else 0):
                for scheduler in by_epoch:
                    scheduler.step()


def after_resume(runner, schedule: ConfigSchedule, flag: Optional[str]) -> None:
    """Apply ``schedule`` to a Runner mmengine has just resumed: replay it (the run was given
    ``flag``, e.g. '--epochs 4') or, without a flag, warn where the checkpoint's differs."""
    differences = schedule.differences()
    if flag is not None:
        schedule.follow(runner)
        was = f' (the checkpoint\'s differed: {"; ".join(differences)})' if differences else ''
        print_log(f'resume: the learning-rate schedule follows {flag} from '
                  f'iteration {runner.iter} on, as a fresh run with it would{was}',
                  logger='current')
    elif differences:
        unit, length = run_length(runner.cfg)
        flag = '--epochs' if unit == 'epochs' else '--iters'
        print_log(f'resume: the checkpoint\'s learning-rate schedule differs from the config\'s '
                  f'({"; ".join(differences)}); this run goes on with the checkpoint\'s, as '
                  f'mmengine resumes. To follow a schedule of N {unit} from the resumed '
                  f'iteration instead, resume with {flag} N (the flag the run was started with, '
                  f'to keep its schedule; {flag} {length} for the config\'s)', logger='current',
                  level=logging.WARNING)


class ScheduleOfTheRun:
    """For any Runner class (mixed in before it): the spans and the resume above.
    ``schedule_flag``: the flag that scaled the config's schedule ('--epochs 4'), None if none
    did."""

    schedule_flag: Optional[str] = None

    def build_param_scheduler(self, scheduler):
        if run_length(self.cfg)[0] == 'epochs':
            scheduler = self._whole_iteration_spans(scheduler)
        return super().build_param_scheduler(scheduler)

    def _whole_iteration_spans(self, scheduler):
        if isinstance(scheduler, dict) and 'type' not in scheduler:  # one list per optimizer
            return {name: self._whole_iteration_spans(s) for name, s in scheduler.items()}
        if not isinstance(scheduler, (list, tuple)) or not any(
                isinstance(s, dict) for s in scheduler):
            return scheduler  # built schedulers (resume), or a single one
        kept, dropped = whole_iteration_spans(list(scheduler), len(self.train_dataloader),
                                              self.max_epochs)
        if dropped:
            print_log(f'schedule: left out, fewer than 2 iterations of {len(self.train_dataloader)}'
                      f'-iteration epochs: {"; ".join(dropped)}', logger='current')
        return kept

    def resume(self, filename: str, *args, **kwargs):
        schedule = ConfigSchedule(self)
        result = super().resume(filename, *args, **kwargs)
        after_resume(self, schedule, self.schedule_flag)
        return result
