"""Which OpenMMLab is installed, and which of our compatibility measures it needs: decided here,
per installed distribution and version, and nowhere else.

Two stacks provide the same modules (``mmengine``, ``mmcv``, ``mmdet``, ``mmseg``,
``mmpretrain``): the upstream OpenMMLab releases (mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0,
mmsegmentation 1.2.2, mmpretrain 1.2.0; requirements/stack.txt) and the maintained OneDL forks
(onedl-mmengine 0.10.12, onedl-mmcv 2.3.6, onedl-mmdetection 3.5.1, onedl-mmsegmentation 1.4.2,
onedl-mmpretrain 1.3.6; requirements/stack-onedl.txt). A module installed by both an upstream
distribution and its fork is a broken install: their files overwrite each other.

The measures, and where each stack stands (tests/stack/test_stack_decisions.py checks each
against the installed library's own behaviour):

===============================  ==================  ==================  ======================
measure                          upstream            OneDL forks         where applied
===============================  ==================  ==================  ======================
allow-list mmengine training     needed: mmengine    not applied: onedl  ``runner_load_context``
state around the Runner's loads  0.10.7 calls        -mmengine >= 0.10.8 (checked_runner.py)
                                 ``torch.load``      loads it itself
                                 with torch's
                                 defaults
mask-aware TTA model             needed: mmdet 3.3   needed: onedl-      configs' ``tta_model``
(``InstanceSegTTAModel``)        refuses masks       mmdetection 3.5.1   (always ours)
                                                     refuses masks too
``--amp`` refused on CPU         mmengine refuses    the same            engine/runner.py
                                 the CPU
gloo group before the Runner     mmengine's pytorch  the same            engine/distributed.py
on CPU (no ``set_device``)       launcher calls
                                 ``set_device``
setuptools < 81                  needed: mmengine    not needed (the     requirements/*.txt,
(``pkg_resources``)              imports it          forks use           ``filter_known_warnings``
                                                     importlib.metadata)
``mmseg::`` config bases found   works: the          needed: onedl-      ``import vssd_mm``
under the installed distribution distribution is     mmengine 0.10.12    (``let_mmengine_find_
                                 'mmsegmentation'    looks for           mmseg_configs``)
                                                     'mmsegmentation',
                                                     the fork is 'onedl-
                                                     mmsegmentation'
===============================  ==================  ==================  ======================

Our own checkpoint reads (``evaluated_checkpoint``, ``checkpoints.backbone``) always use our
allow-list: they are our loader, not a patch of mmengine's.
"""
import contextlib
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Dict, List, NamedTuple, Optional

# module -> (upstream distribution, OneDL fork distribution)
DISTRIBUTIONS: Dict[str, tuple] = {
    'mmengine': ('mmengine', 'onedl-mmengine'),
    'mmcv': ('mmcv', 'onedl-mmcv'),
    'mmdet': ('mmdet', 'onedl-mmdetection'),
    'mmseg': ('mmsegmentation', 'onedl-mmsegmentation'),
    'mmpretrain': ('mmpretrain', 'onedl-mmpretrain'),
}


class Installed(NamedTuple):
    """The distribution that provides a module."""
    name: str       # e.g. 'mmengine' or 'onedl-mmengine'
    version: str    # e.g. '0.10.7'

    @property
    def fork(self) -> bool:
        return self.name.startswith('onedl-')

    def at_least(self, minimum: str) -> bool:
        from packaging.version import Version
        return Version(self.version) >= Version(minimum)


def _version_of(distribution: str) -> Optional[str]:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def installed(module: str) -> Optional[Installed]:
    """The distribution installed for ``module`` ('mmengine', 'mmdet', ...); None if neither.
    Where both are installed (a mixed, broken install) the fork is reported; ``mixed_modules``
    names it."""
    upstream, fork = DISTRIBUTIONS[module]
    for name in (fork, upstream):
        found = _version_of(name)
        if found is not None:
            return Installed(name, found)
    return None


def mixed_modules() -> List[str]:
    """Modules installed by both an upstream distribution and its fork, as
    'mmdet (mmdet 3.3.0 and onedl-mmdetection 3.5.1)'."""
    mixed = []
    for module, names in DISTRIBUTIONS.items():
        versions = [(name, _version_of(name)) for name in names]
        if all(found is not None for _, found in versions):
            mixed.append(f'{module} ({" and ".join(f"{n} {v}" for n, v in versions)})')
    return mixed


def warn_if_mixed() -> None:
    """One warning where an upstream package and its fork are both installed."""
    mixed = mixed_modules()
    if mixed:
        warnings.warn(
            f'vssd_mm: {"; ".join(mixed)} are installed by both the OpenMMLab release and its '
            'OneDL fork, whose files overwrite each other. Keep one stack per environment: '
            'uninstall both distributions of each and install one again (tools/install.sh with '
            'VSSD_MM_STACK=upstream or onedl does this).', stacklevel=2)


def mmengine_loads_training_state() -> bool:
    """Whether mmengine's own checkpoint loader allow-lists its training state under torch's
    weights-only default (onedl-mmengine >= 0.10.8, ``_safe_torch_load``). The upstream
    mmengine (<= 0.10.7) does not: an mmengine checkpoint then needs our allow-list."""
    engine = installed('mmengine')
    return engine is not None and engine.fork and engine.at_least('0.10.8')


def mmengine_imports_pkg_resources() -> bool:
    """Whether mmengine resolves ``mmdet::`` config bases through ``pkg_resources`` (upstream
    mmengine; setuptools 80 then warns each time, setuptools >= 81 has no pkg_resources)."""
    engine = installed('mmengine')
    return engine is not None and not engine.fork


def runner_load_context():
    """The context for the Runner's checkpoint loads (``load_from``, ``resume``): our allow-list
    of mmengine's training state where the installed mmengine needs it, else nothing. Not both:
    torch keeps one set of allowed globals, so the fork's exit from its own allow-list would
    remove ours, and its plain ``getattr`` would stand beside our restricted one."""
    if mmengine_loads_training_state():
        return contextlib.nullcontext()
    from .compat import allow_mmengine_training_state
    return allow_mmengine_training_state()


def mmseg_bases_resolve() -> bool:
    """Whether mmengine finds ``mmseg::`` config bases: it asks for the distribution its table
    names for the module (``'mmsegmentation'``), which the fork installs as
    ``onedl-mmsegmentation`` (``mmdet`` and ``mmpretrain`` resolve: their table entry is also the
    module's name, which mmengine finds by import)."""
    from importlib.util import find_spec

    from mmengine.config.utils import MODULE2PACKAGE
    name = MODULE2PACKAGE.get('mmseg')
    if name is None:
        return False
    # mmengine's is_installed: the distribution, else a module of that name. Asked here without
    # calling it: upstream's imports pkg_resources (a warning on every `import vssd_mm`)
    if _version_of(name) is not None:
        return True
    spec = find_spec(name)
    return spec is not None and spec.origin is not None


def let_mmengine_find_mmseg_configs() -> None:
    """Where mmseg is installed and mmengine cannot find its ``mmseg::`` bases (onedl-mmengine
    0.10.12 with onedl-mmsegmentation 1.4.2: "mmsegmentation is not installed"), point mmengine's
    module-to-distribution table at the distribution that is installed. Nothing changes where
    the bases resolve. A config is parsed after ``import vssd_mm`` in our tools; with another
    library's tools, import vssd_mm first."""
    seg = installed('mmseg')
    if seg is None or installed('mmengine') is None or mmseg_bases_resolve():
        return
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE['mmseg'] = seg.name
