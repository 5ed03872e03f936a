"""``--cfg-options`` checked before they touch the config: an option without a value, a misspelt
key on the way to the entry, or an argument the entry's class does not take is one line naming
the option and the nearest valid key, before anything is built or written.

mmengine itself merges whatever it is given: a typo becomes a new key that is silently ignored or
fails much later inside a constructor, after the work dir was created.
"""
import difflib
import inspect
from typing import Iterable, Optional, Set, Tuple

from mmengine.config import Config, DictAction

from .errors import ToolError

# registries whose entries appear as ``type=`` in OpenMMLab configs
REGISTRIES = ('MODELS', 'DATASETS', 'TRANSFORMS', 'HOOKS', 'METRICS', 'EVALUATOR', 'OPTIMIZERS',
              'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'VISUALIZERS',
              'VISBACKENDS', 'LOOPS', 'DATA_SAMPLERS', 'LOG_PROCESSORS', 'TASK_UTILS',
              'MODEL_WRAPPERS', 'FUNCTIONS')
NEAR_MISS = 0.8  # difflib ratio above which an unknown key is taken for a typo of a known one


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` that refuses an item without ``=`` with one line."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            if '=' not in item:
                raise ToolError(f'--cfg-options {item}: no value; write KEY=VALUE, e.g. '
                                f'{item}=...')
        super().__call__(parser, namespace, values, option_string)


def _registered(type_name, scope: Optional[str]):
    """The class (or function) a ``type=`` names in ``scope``, or None."""
    if not isinstance(type_name, str):
        return type_name if callable(type_name) else None
    import mmengine.registry as registries
    for name in REGISTRIES:
        registry = getattr(registries, name, None)
        if registry is None:
            continue
        with registry.switch_scope_and_registry(scope) as scoped:
            found = scoped.get(type_name)
        if found is not None:
            return found
    return None


def _arguments(target) -> Tuple[Set[str], bool]:
    """(the named keyword arguments ``target`` accepts, whether it also takes ``**kwargs``)."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return set(), True
    named = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return named, any(p.kind == p.VAR_KEYWORD for p in parameters)


def _looks_like_typo(word: str, known: Iterable[str]) -> bool:
    """Close to a known key (difflib), or a truncation / extension of one."""
    known = [k for k in known if k != word]
    if difflib.get_close_matches(word, known, n=1, cutoff=NEAR_MISS):
        return True
    return any(min(len(word), len(k)) >= 4 and (k.startswith(word) or word.startswith(k))
               for k in known)


def _nearest(word: str, candidates: Iterable[str]) -> Optional[str]:
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.)
    return close[0] if close else None


def _fail(option: str, problem: str, path, nearest: Optional[str]) -> None:
    hint = f'; nearest valid key: {".".join([*path, nearest])}' if nearest else ''
    raise ToolError(f'--cfg-options {option}: {problem}{hint}')


def check_cfg_options(cfg: Config, options: dict) -> None:
    """Exit with one line if an option of ``options`` (``{'a.b.c': value}``) cannot be meant for
    ``cfg``. New top-level keys and new arguments that the entry's class takes are fine."""
    scope = cfg.get('default_scope')
    tree = cfg.to_dict()
    for option in options:
        node, path = tree, []
        parts = option.split('.')
        for part in parts:
            if node is None:  # e.g. init_cfg=None: mmengine builds the dict anew
                break
            if isinstance(node, (list, tuple)):
                if part.isdigit() and int(part) < len(node):
                    node, path = node[int(part)], path + [part]
                    continue
                _fail(option, f'{".".join(path)} is a list of {len(node)}: use an index from 0 '
                      f'to {len(node) - 1}', [], None)
            if not isinstance(node, dict):
                _fail(option, f'{".".join(path)} is {type(node).__name__} {node!r}, not a dict',
                      [], None)
            if part in node:
                node, path = node[part], path + [part]
                continue
            if not path:  # a new top-level key, unless it looks like a typo of one
                if _looks_like_typo(part, node):
                    _fail(option, f'no top-level key {part!r}', path, _nearest(part, node))
                break
            target = _registered(node.get('type'), scope) if 'type' in node else None
            named, any_keyword = _arguments(target) if target is not None else (set(), True)
            known = named | set(node) - {'type', '_scope_'}
            if part in named:  # an argument the config did not set yet: fine at any depth
                break
            if target is not None and not any_keyword:
                _fail(option, f'{node["type"]} takes no argument {part!r}', path,
                      _nearest(part, known))
            if _looks_like_typo(part, known):
                _fail(option, f'{".".join(path)} has no key {part!r}', path,
                      _nearest(part, known))
            break  # a new key (or dict) where the entry takes any keyword
