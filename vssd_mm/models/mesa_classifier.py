"""``MESAClassifier``: mmpretrain's ImageClassifier plus MESA's self-distillation term (``mesa.py``
explains MESA and registers this class's builder). Needs mmpretrain."""
from typing import List, Optional

from mmpretrain.models import ImageClassifier
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from .mesa import soft_target_cross_entropy, teacher_probabilities


class MESAClassifier(ImageClassifier):
    """An ImageClassifier whose training loss, while a teacher is set (``MESAHook`` sets the EMA
    model from the start epoch on), gains
    ``loss_mesa = weight * SoftTargetCE(logits, softmax(teacher logits))`` on the same batch.
    Without a teacher it is exactly ImageClassifier. Arguments: those of ImageClassifier."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # a tuple, so that the teacher is neither a submodule (state dict, optimizer, DDP) nor
        # copied into the EMA model
        self._mesa: Optional[tuple] = None

    def set_mesa_teacher(self, teacher: Optional[nn.Module], weight: float) -> None:
        """Distil from ``teacher`` (a classifier taking the same inputs) with ``weight``; None
        turns the term off."""
        self._mesa = None if teacher is None else (teacher, float(weight))

    def loss(self, inputs: Tensor, data_samples: List[DataSample]) -> dict:
        """Losses of a batch ``inputs`` (batch, 3, H, W): the head's ``loss``; while a teacher is
        set, the head's loss as ``loss_cls`` and ``loss_mesa`` (mmengine sums every ``loss*`` key
        and logs the sum as ``loss``; a ``loss`` key of our own would hide it in the log)."""
        feats = self.extract_feat(inputs)
        if self._mesa is None:
            return self.head.loss(feats, data_samples)
        teacher, weight = self._mesa
        logits = self.head(feats)
        # what head.loss computes from the logits
        losses = self.head._get_loss(logits, data_samples)
        losses['loss_cls'] = losses.pop('loss')
        losses['loss_mesa'] = weight * soft_target_cross_entropy(
            logits, teacher_probabilities(teacher, inputs))
        return losses
