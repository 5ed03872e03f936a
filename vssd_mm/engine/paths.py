"""Paths a tool is given, checked before any work: a file where a folder is needed (or the other
way round), a parent that is a file, no permission to write, the wrong extension. Each problem is
one ``ToolError`` naming the path and the reason; nothing is created here."""
import os
import os.path as osp
from typing import Sequence

from .errors import ToolError


def _nearest_existing(path: str) -> str:
    path = osp.abspath(path)
    while not osp.exists(path):
        parent = osp.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _check_can_create(path: str, what: str) -> None:
    """``path`` does not exist yet: its nearest existing ancestor must be a writable folder."""
    ancestor = _nearest_existing(path)
    if not osp.isdir(ancestor):
        raise ToolError(f'{what} {path} cannot be created: {ancestor} is a file, not a folder')
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ToolError(f'{what} {path} cannot be created: no permission to write in {ancestor}')


def check_folder_to_write(path: str, what: str) -> None:
    """A folder the tool writes into (``--work-dir``, ``--show-dir``, demo data's ``--out``):
    an existing writable folder, or a path where one can be created."""
    if osp.exists(path):
        if not osp.isdir(path):
            raise ToolError(f'{what} {path} is a file, not a folder; choose a folder path')
        if not os.access(path, os.W_OK | os.X_OK):
            raise ToolError(f'{what} {path}: no permission to write in this folder')
        return
    _check_can_create(path, what)


def check_file_to_write(path: str, what: str, extensions: Sequence[str] = ()) -> None:
    """A file the tool writes (``--out``, an export): the right extension, not a folder, its
    folder writable or creatable."""
    if extensions and not path.lower().endswith(tuple(extensions)):
        raise ToolError(f'{what} {path} must end in {" or ".join(extensions)}')
    if osp.isdir(path):
        raise ToolError(f'{what} {path} is a folder, not a file; name a file inside it')
    if osp.exists(path):
        if not os.access(path, os.W_OK):
            raise ToolError(f'{what} {path}: no permission to write this file')
        return
    _check_can_create(path, what)


def check_file_to_read(path: str, what: str) -> None:
    """A file the tool reads (a config): it exists and is a file."""
    if osp.isdir(path):
        raise ToolError(f'{what} {path} is a folder, not a file')
    if not osp.exists(path):
        raise ToolError(f'{what} not found: {path}')
    if not os.access(path, os.R_OK):
        raise ToolError(f'{what} {path}: no permission to read it')
