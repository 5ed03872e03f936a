"""MESA: self-distillation from the model's own EMA, as the release trained its MESA checkpoints.

From epoch ``int(start_ratio * max_epochs)`` on (the release: 0.25), the classification loss
gains a term ``weight * SoftTargetCE(logits, softmax(EMA model's logits))``: the EMA model sees
the same (Mixup/CutMix-mixed) batch in eval mode, without gradient. The release's weights:
tiny 1.0, small 1.5, base 2.0.

In a config (``configs/mmpretrain/vssd_*_8xb128_in1k_mesa.py``)::

    model = dict(type='MESAClassifier', ...)            # an ImageClassifier that adds the term
    custom_hooks = [dict(type='EMAHook', ...),           # the teacher
                    dict(type='MESAHook', weight=1.0)]   # switches the term on at the start epoch

The classifier lives in ``mesa_classifier.py``, which needs mmpretrain; it is registered here
through a builder so that ``import vssd_mm`` does not import mmpretrain for mmdet/mmseg users.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, MODELS
from mmengine.runner import EpochBasedTrainLoop
from torch import Tensor, nn


def soft_target_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ``-sum_c target * log_softmax(logits)``; both (batch, classes).
    Computed in float32 whatever the logits' dtype (AMP)."""
    return -(target.float() * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def teacher_probabilities(teacher: nn.Module, inputs: Tensor) -> Tensor:
    """softmax of the teacher classifier's logits on ``inputs`` (batch, 3, H, W), computed in
    eval mode (no drop path, BatchNorm's running statistics) and without gradient; the teacher's
    train/eval mode is restored afterwards."""
    was_training = teacher.training
    teacher.eval()
    try:
        with torch.no_grad():
            logits = teacher(inputs, mode='tensor')
    finally:
        teacher.train(was_training)
    return logits.float().softmax(dim=-1)


@MODELS.register_module(name='MESAClassifier')
def build_mesa_classifier(**kwargs) -> nn.Module:
    """``type='MESAClassifier'``: an mmpretrain ImageClassifier with MESA's term (its arguments)."""
    from .mesa_classifier import MESAClassifier
    return MESAClassifier(**kwargs)


@HOOKS.register_module()
class MESAHook(Hook):
    """Switches on MESA's self-distillation term of a ``MESAClassifier`` from epoch
    ``int(start_ratio * max_epochs)`` (0-based) on, with the EMAHook's model as the teacher.

    Args:
        weight (float): V, the weight of the term (release: tiny 1.0, small 1.5, base 2.0).
        start_ratio (float): the fraction of the epochs trained without the term (release: 0.25).
    """

    def __init__(self, weight: float = 1.0, start_ratio: float = 0.25):
        if not weight > 0:
            raise ValueError(f'MESAHook: weight must be > 0, got {weight!r}')
        if not 0 <= start_ratio <= 1:
            raise ValueError(f'MESAHook: start_ratio is a fraction of the epochs in [0, 1], got '
                             f'{start_ratio!r}')
        self.weight = float(weight)
        self.start_ratio = float(start_ratio)
        self.start_epoch: Optional[int] = None

    @staticmethod
    def _classifier(runner) -> nn.Module:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_mesa_teacher'):
            raise TypeError(f"MESAHook: the model is a {type(model).__name__}, which has no MESA "
                            f"term; set model=dict(type='MESAClassifier', ...) in the config")
        return model

    @staticmethod
    def _ema_hook(runner) -> EMAHook:
        for hook in runner.hooks:
            if isinstance(hook, EMAHook):
                return hook
        raise RuntimeError("MESAHook: MESA distils from the EMA model, but the runner has no "
                           "EMAHook; add dict(type='EMAHook', ...) to custom_hooks")

    def before_train(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise TypeError(f'MESAHook: MESA starts at an epoch; the train loop is a '
                            f'{type(runner.train_loop).__name__} (use train_cfg=dict('
                            f"type='EpochBasedTrainLoop', ...))")
        self._classifier(runner)
        self._ema_hook(runner)
        self.start_epoch = int(self.start_ratio * runner.max_epochs)
        runner.logger.info(f'MESA: self-distillation from the EMA model with weight '
                           f'{self.weight} from epoch {self.start_epoch + 1} of '
                           f'{runner.max_epochs} on')

    def before_train_epoch(self, runner) -> None:
        active = runner.epoch >= self.start_epoch
        teacher = self._ema_hook(runner).ema_model.module if active else None
        self._classifier(runner).set_mesa_teacher(teacher, self.weight)

    def after_train(self, runner) -> None:
        self._classifier(runner).set_mesa_teacher(None, self.weight)
