"""The VSSD classifiers in mmpretrain's model hub: after ``import vssd_mm``,
``mmpretrain.list_models('vssd*')``, ``get_model(NAME, pretrained=True)`` and
``inference_model(NAME, IMAGE)`` know the official classification files.

Names: ``configs/mmpretrain/metafile.yml`` (OpenMMLab's model-index format, shipped as
``vssd_mm/.mim/configs/mmpretrain/metafile.yml``), read by mmpretrain's own
``ModelHub.register_model_index`` with its ``Config`` paths relative to ``vssd_mm/.mim``, the
way mmpretrain registers its own metafiles. Registration waits until ``mmpretrain.apis.model``
is imported (at once when it already is), so ``import vssd_mm`` imports no mmpretrain, and a
machine without mmpretrain registers nothing.

Weights: ``get_model(NAME, pretrained=True)`` hands the metafile's URL to mmengine's
``CheckpointLoader``. Its ``http(s)://`` loader would unpickle the file with
``weights_only=False`` and return the release's layout (``model`` / ``model_ema``), in which an
mmpretrain ``ImageClassifier`` finds none of its keys (mmengine's non-strict load only warns).
A loader for http(s) URLs that end in an official classification file's name (the release's or
a mirror's, e.g. ``get_model(..., url_mapping=(RELEASE, MIRROR))``) takes them instead: the
file comes from torch hub's cache (``$TORCH_HOME/hub/checkpoints``, where mmengine's loader keeps
downloads too; downloaded once), is read weights-only and its ``model`` weights are converted
for mmpretrain as ``tools/test.py`` and ``tools/convert_checkpoint.py`` do.
"""
import importlib.abc
import re
import sys
import warnings
from importlib.util import find_spec
from typing import Callable, List

from ..compat import allow_mmengine_training_state
from ..configs import CONFIGS_DIR
from .checkpoints import (convert_official_classifier, is_official_classification_checkpoint,
                          local_file, read_checkpoint)
from .zoo import OFFICIAL_CHECKPOINTS

MIM_DIR = CONFIGS_DIR.parent  # vssd_mm/.mim: the metafile's Config paths start with configs/
METAFILE = CONFIGS_DIR / 'mmpretrain' / 'metafile.yml'
HUB_MODULE = 'mmpretrain.apis.model'  # defines ModelHub
COPY_HINT = ('give get_model url_mapping=(r"https://.*/", "http://YOUR_MIRROR/") to fetch it '
             'from elsewhere')


def official_classification_files() -> List[str]:
    """The release's classification file names (``vssd_tiny_best_ema.pth``, ...)."""
    return [c.filename for c in OFFICIAL_CHECKPOINTS if c.task == 'classification']


def official_url_pattern() -> str:
    """The CheckpointLoader prefix (a regex mmengine ``re.match``-es) of http(s) URLs that name
    an official classification file. It starts with ``https?:``, which mmengine's reverse sort
    of prefixes puts before its own ``https://`` and ``http://``."""
    names = '|'.join(re.escape(name) for name in official_classification_files())
    return rf'https?://[^?#]*/(?:{names})$'


def load_from_vssd_release(filename: str, map_location=None) -> dict:
    """CheckpointLoader loader (mmengine logs it as the ``vssd_release`` backend): the file of
    URL ``filename`` from torch hub's cache (downloaded once), read weights-only; an official
    classification file comes back as the mmpretrain checkpoint of its ``model`` weights
    (``{'state_dict': ..., 'meta': ...}``), any other file as it is.

    Raises:
        CheckpointDownloadError: the URL cannot be fetched (one line: where the cache is).
        UnreadableCheckpointError: the file is not a readable checkpoint.
    """
    path = local_file(filename, COPY_HINT)
    with allow_mmengine_training_state():  # a mirror may hold a vssd_mm training file
        checkpoint = read_checkpoint(path, map_location)
    if is_official_classification_checkpoint(checkpoint):
        return convert_official_classifier(checkpoint, path, 'model')
    return checkpoint


def register_checkpoint_loader() -> None:
    """Make mmengine's CheckpointLoader read official classification URLs with
    ``load_from_vssd_release`` (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(official_url_pattern(), load_from_vssd_release, force=True)


def register_models() -> None:
    """Register the classifiers of ``METAFILE`` with mmpretrain's ModelHub (idempotent).
    Needs ``mmpretrain.apis.model`` imported; a missing metafile (an install without it) warns
    instead of breaking mmpretrain's import."""
    from mmpretrain.apis.model import ModelHub
    if not METAFILE.is_file():
        warnings.warn(f'vssd_mm: {METAFILE} is missing, the VSSD models are not in mmpretrain\'s '
                      'model hub; reinstall vssd_mm')
        return
    from modelindex.load_model_index import load
    names = [model.name.lower() for model in load(str(METAFILE)).models]
    if all(ModelHub.has(name) for name in names):
        return
    ModelHub.register_model_index(METAFILE, config_prefix=MIM_DIR)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``callback`` right after module ``name`` has run, once (a finder that asks the
    finders after it for the module's spec and wraps the spec's ``exec_module``)."""

    def __init__(self, name: str, callback: Callable[[], None]):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name or self not in sys.meta_path:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(
                finder, 'find_spec') else None
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        run, callback = spec.loader.exec_module, self.callback

        def exec_module(module):
            run(module)
            callback()
        spec.loader.exec_module = exec_module
        return spec


def register_with_mmpretrain() -> None:
    """What ``import vssd_mm`` does for mmpretrain's hub: nothing without mmpretrain; the loader
    of official URLs now; the model names once mmpretrain's ModelHub exists."""
    if find_spec('mmpretrain') is None:
        return
    register_checkpoint_loader()
    if HUB_MODULE in sys.modules:
        register_models()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(HUB_MODULE, register_models))


__all__ = ['METAFILE', 'load_from_vssd_release', 'official_url_pattern', 'register_models',
           'register_with_mmpretrain']
