"""Reading a config file the way mmengine does, with its mistakes as one ``ToolError`` each: a file
that does not parse (file, line, the parser's message) and a ``_base_`` that cannot be found (the
path tried, and a base that would work: the packaged config of that name)."""
import ast
import os.path as osp
import re
from pathlib import Path
from typing import List, Optional

from mmengine.config import Config

from ..configs import CONFIGS_DIR
from .errors import ToolError

# mmengine's package-scoped bases ('mmdet::path') and where those packages keep their configs
PACKAGE_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def _syntax_error(path: str, err: SyntaxError) -> ToolError:
    where = f'{path}, line {err.lineno}' if err.lineno else path
    return ToolError(f'config file {where} does not parse: {err.msg}')


def _bases(path: str) -> List[str]:
    """The ``_base_`` entries of a config file, read without executing it."""
    tree = ast.parse(Path(path).read_text(encoding='utf-8'), filename=path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [value] if isinstance(value, str) else list(value)
    return []


def _packaged_configs_named(name: str) -> List[str]:
    """Every packaged config file called ``name``: ours (an absolute path, since mmengine's
    ``pkg::`` bases know only OpenMMLab's packages) and mmdet's / mmseg's / mmpretrain's
    (``pkg::relative/path``)."""
    from importlib.util import find_spec
    found = [str(p) for p in sorted(CONFIGS_DIR.rglob(name))]
    for package in PACKAGE_SCOPES:
        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0]) / '.mim' / 'configs'
        found += [f'{package}::{p.relative_to(root)}' for p in sorted(root.rglob(name))]
    return found


def _missing_base(path: str, tried: str) -> ToolError:
    """The error for a ``_base_`` of ``path`` (or of one of its own bases) that does not exist."""
    base = next((b for b in _bases(path) if osp.basename(b) == osp.basename(tried)), None)
    which = f'its _base_ {base!r}' if base else 'a _base_ of one of its bases'
    candidates = _packaged_configs_named(osp.basename(tried))
    fix = (f'; a base that exists: _base_ = {candidates[0]!r}' if candidates else
           '; point _base_ at the file relative to the config (or by an absolute path)')
    return ToolError(f'config file {path}: {which} was not found (tried {tried}){fix}')


def read_config(path: str) -> Config:
    """``Config.fromfile(path)``, with parse errors and missing bases as one ``ToolError``."""
    try:
        return Config.fromfile(path)
    except SyntaxError as err:
        # mmengine re-raises the parser's error with the message only; parse again for the line
        try:
            ast.parse(Path(path).read_text(encoding='utf-8'), filename=path)
        except SyntaxError as located:
            raise _syntax_error(path, located) from None
        raise ToolError(f'config file {path} does not parse: {err}') from None
    except FileNotFoundError as err:
        tried = err.filename or _quoted_path(str(err))
        if not tried:
            raise
        raise _missing_base(path, tried) from None


def _quoted_path(message: str) -> Optional[str]:
    """The path in mmengine's 'file "PATH" does not exist'."""
    found = re.search(r'file "([^"]+)" does not exist', message)
    return found.group(1) if found else None
