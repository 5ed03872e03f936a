"""Reading checkpoint files: ``torch.load(weights_only=True)`` with one line naming the path and
what is wrong when a file cannot be read (missing, empty, truncated, not a checkpoint, holding
pickled objects), instead of torch's traceback; and the one place that tells a local file, an
http(s) URL (downloaded, download.py) and mmengine's other schemes apart."""
import os
import os.path as osp
import pickle
import zipfile
from typing import Optional

import torch

from .download import cached_checkpoint, is_url

ZIP_MAGIC = b'PK\x03\x04'
PICKLE_PROTOCOL = 0x80  # first byte of torch's legacy (pre-1.6, non-zip) format


class UnreadableCheckpointError(ValueError):
    """A checkpoint file that cannot be read; the message is one line."""


class CheckpointNotFoundError(UnreadableCheckpointError, FileNotFoundError):
    """A checkpoint path that names no file."""


def local_file(path: str, local_copy_hint: str) -> Optional[str]:
    """The local file a checkpoint argument names: ``path`` itself, or for an http(s) URL its copy
    in torch's hub cache (downloaded there once; ``local_copy_hint`` says in the download error
    how to use a copy instead); None for mmengine's other schemes (``open-mmlab://``,
    ``s3://``...), which mmengine's loaders read.

    Raises:
        CheckpointNotFoundError: a local path that is not a file.
        CheckpointDownloadError: a URL that cannot be fetched.
    """
    if is_url(path):
        return cached_checkpoint(path, local_copy_hint)
    if '://' in path:
        return None
    _check_is_file(path)
    return path


def _check_is_file(path: str) -> None:
    if not osp.isfile(path):
        raise CheckpointNotFoundError(f'checkpoint not found: {path}'
                                      + (' (it is a directory)' if osp.isdir(path) else ''))


def _describe_start(head: bytes) -> str:
    if not head:
        return 'is empty (0 bytes): an interrupted save or download'
    printable = head[:24].decode('ascii', errors='replace')
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64]):
        return f'is a text file (it starts with {printable.strip()!r}), not a PyTorch checkpoint'
    return f'is not a PyTorch checkpoint (it starts with bytes {head[:8]!r})'


def check_readable(path: str) -> None:
    """Raise UnreadableCheckpointError when ``path`` is plainly not a complete checkpoint (no
    unpickling: it looks at the file's framing only)."""
    _check_is_file(path)
    with open(path, 'rb') as f:
        head = f.read(64)
    size = os.path.getsize(path)
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            raise UnreadableCheckpointError(
                f'checkpoint {path} is truncated: a PyTorch zip archive without its end '
                f'({size} bytes), from an interrupted save or download; save or download it again')
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith('data.pkl') for name in archive.namelist()):
                raise UnreadableCheckpointError(
                    f'checkpoint {path} is a zip archive but not a PyTorch checkpoint '
                    '(no data.pkl inside)')
        return
    if not head or head[0] != PICKLE_PROTOCOL:
        raise UnreadableCheckpointError(f'checkpoint {path} {_describe_start(head)}')


def read_checkpoint(path: str, map_location='cpu'):
    """``torch.load(path, weights_only=True)`` whose failures are UnreadableCheckpointError.

    Globals allowed by an enclosing ``torch.serialization.safe_globals`` context (e.g. mmengine's
    training state, ``vssd_mm.compat``) are honoured.
    """
    check_readable(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        unsupported = [line.strip() for line in str(err).splitlines()
                       if 'Unsupported global' in line]
        if unsupported:
            name = unsupported[0].split('GLOBAL', 1)[-1].split()[0]
            raise UnreadableCheckpointError(
                f'checkpoint {path} holds pickled Python objects besides tensors ({name}); '
                'checkpoints are read weights-only. If you made the file, save the weights '
                'alone: torch.save({"state_dict": model.state_dict()}, PATH)') from None
        raise UnreadableCheckpointError(f'checkpoint {path} is corrupt or not a PyTorch '
                                        'checkpoint (unpickling failed)') from None
    except (EOFError, RuntimeError, OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        first = (str(err).strip().splitlines() or [''])[0][:200]
        raise UnreadableCheckpointError(
            f'checkpoint {path} is truncated or corrupt ({type(err).__name__}: {first}); save or '
            'download it again') from None
