"""The Runner our tools build: mmengine's Runner (or the config's ``runner_type``) that reads the
user's own checkpoints under torch >= 2.6 and checks them before loading.

- ``load_or_resume`` (the ``resume`` / ``load_from`` step, and only it) runs inside
  ``stack.runner_load_context``: where the installed mmengine needs it (upstream 0.10.7), our
  allow-list of its training state, weights-only otherwise; and inside ``runner_reads_once``: each file is read once (a file the tools read and checked
  before the Runner was built is handed over, not read again).
- ``resume``, and with ``strict_load_from`` (tools/test.py) ``load_checkpoint``, first read the
  file (``UnreadableCheckpointError`` for a broken one) and check that it fits the whole model
  (``CheckpointMismatchError``, instead of mmengine's warning and random weights). A
  ``load_from`` for fine-tuning may differ in its heads and keeps mmengine's non-strict load;
  VSSD names a backbone it does not fit in one log line (``VSSD._load_from_state_dict``).
- ``build_dataloader`` (``WorkersEndWithRunner``): data workers die with the Runner's process.
- ``build_param_scheduler``, ``resume`` (``runner_schedule.ScheduleOfTheRun``): the schedule the
  tools' flags ask for, resumed runs included.
"""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..compat import allow_mmengine_training_state
from ..stack import runner_load_context
from ..models.checkpoints import read_checkpoint
from .evaluated_checkpoint import check_fits_once, runner_reads_once, was_checked
from .runner_schedule import ScheduleOfTheRun
from .worker_lifetime import end_workers_with_this_process


def _unwrapped(model):
    while hasattr(model, 'module'):  # DDP, TTA models
        model = model.module
    return model


class CheckedLoading:
    """The checks above, for any Runner class (mixed in before it)."""

    strict_load_from = False  # tools/test.py: a load_from must fit the whole model too

    def load_or_resume(self) -> None:
        with runner_load_context(), runner_reads_once():
            return super().load_or_resume()

    def load_checkpoint(self, filename: str, *args, **kwargs):
        self._check_checkpoint(filename, whole_model=self.strict_load_from)
        return super().load_checkpoint(filename, *args, **kwargs)

    def resume(self, filename: str, *args, **kwargs):
        self._check_checkpoint(filename, whole_model=True)
        return super().resume(filename, *args, **kwargs)

    def _check_checkpoint(self, filename: str, whole_model: bool) -> None:
        # other schemes: mmengine reads and reports them; explicit --resume / tools/test.py
        # files were checked before the Runner was built; a fine-tuning load_from is read once,
        # by mmengine's load (runner_reads_once: one-line errors for a broken file)
        if '://' in filename or was_checked(filename) or not whole_model:
            return
        with allow_mmengine_training_state():
            checkpoint = read_checkpoint(filename)
        check_fits_once(_unwrapped(self.model), checkpoint, filename,
                        self.cfg.get('filename') or 'the config')


class WorkersEndWithRunner:
    """For any Runner class (mixed in before it): the workers of every DataLoader the Runner
    builds from a config (train, val, test) are killed when the Runner's process dies, however it
    dies (``worker_lifetime``); mmengine's ``worker_init_fn`` (the config's, or its seeding) still
    runs after that."""

    @classmethod
    def build_dataloader(cls, dataloader, *args, **kwargs):
        loader = super().build_dataloader(dataloader, *args, **kwargs)
        # a DataLoader given as an object is the caller's: left as it is
        return end_workers_with_this_process(loader) if isinstance(dataloader, dict) else loader


@RUNNERS.register_module()
class CheckedRunner(CheckedLoading, WorkersEndWithRunner, ScheduleOfTheRun, Runner):
    """mmengine's Runner with ``CheckedLoading``; what tools/train.py and test.py build."""


def checked_runner_class(runner_type=None) -> type:
    """The Runner class to build: ``CheckedRunner``, or for a config's own ``runner_type`` (a
    registered name or a class) that class with ``CheckedLoading`` and ``WorkersEndWithRunner``
    mixed in."""
    if runner_type is None or runner_type in ('Runner', Runner, 'CheckedRunner', CheckedRunner):
        return CheckedRunner
    base = RUNNERS.get(runner_type) if isinstance(runner_type, str) else runner_type
    if base is None:
        raise KeyError(f'runner_type {runner_type!r} is not a registered Runner')
    mixins = tuple(m for m in (CheckedLoading, WorkersEndWithRunner, ScheduleOfTheRun)
                   if not issubclass(base, m))
    if not mixins:
        return base
    return type(f'Checked{base.__name__}', (*mixins, base), {})
