"""Checkpoints: reading files and URLs (reading.py, download.py), picking the weights out of a
file and comparing their keys with a model's (keys.py), telling what a file is (identify.py),
checking that it fits (fit.py), loading a backbone's ``init_cfg`` weights (backbone.py) and
converting the release's classification files for mmpretrain (convert.py)."""
from .backbone import load_backbone_checkpoint
from .convert import (OFFICIAL_STATE_KEYS, convert_official_classifier,
                      is_official_classification_checkpoint, official_classifier_to_mmpretrain)
from .download import CheckpointDownloadError, cache_dir, cached_checkpoint, is_url
from .fit import backbone_fit_report, check_fits
from .identify import describe_arch, fitting_configs, identify, vssd_arch
from .keys import CheckpointMismatchError, KeyDiff, state_dict_of
from .reading import CheckpointNotFoundError, UnreadableCheckpointError, local_file, read_checkpoint

__all__ = [
    'CheckpointDownloadError', 'CheckpointMismatchError', 'CheckpointNotFoundError', 'KeyDiff',
    'OFFICIAL_STATE_KEYS', 'UnreadableCheckpointError', 'cache_dir', 'cached_checkpoint',
    'backbone_fit_report', 'check_fits', 'convert_official_classifier', 'describe_arch',
    'fitting_configs', 'identify', 'is_official_classification_checkpoint', 'is_url',
    'load_backbone_checkpoint', 'local_file', 'official_classifier_to_mmpretrain',
    'read_checkpoint', 'state_dict_of', 'vssd_arch',
]
