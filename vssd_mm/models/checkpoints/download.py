"""Checkpoints by URL: downloaded once into torch's hub cache (``$TORCH_HOME/hub/checkpoints``,
where mmengine and torchvision keep theirs), then read from there like a local file.

Why not mmengine's ``http(s)://`` loader: it unpickles through
``torch.hub.load_state_dict_from_url``, whose default is ``weights_only=False`` — arbitrary code
from the network. Files fetched here are read by the caller with ``weights_only=True``.
"""
import contextlib
import http.client
import os
import os.path as osp
import sys
import urllib.error
from typing import Iterator
from urllib.parse import urlparse

import torch

DOWNLOAD_SCHEMES = ('http://', 'https://')


class CheckpointDownloadError(RuntimeError):
    """A checkpoint URL could not be fetched (offline, unreachable, not found)."""


def is_url(path) -> bool:
    """Whether ``path`` is an http(s) URL this module downloads."""
    return isinstance(path, str) and path.startswith(DOWNLOAD_SCHEMES)


def cache_dir() -> str:
    """The folder downloaded checkpoints are kept in (torch.hub's, honours $TORCH_HOME)."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


@contextlib.contextmanager
def _exclusive(lock_path: str) -> Iterator[None]:
    """One process at a time (the ranks of a distributed run share the cache)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, downloads still land atomically
        yield
        return
    with open(lock_path, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f'HTTP {err.code} {err.reason}'
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f'{type(err).__name__}: {err}'


def cached_checkpoint(url: str, local_copy_hint: str) -> str:
    """The local path of ``url``'s file, downloading it into ``cache_dir()`` first if it is not
    there (progress bar on stderr; the file appears only when complete).

    Args:
        url: http(s) URL whose last path component is the file name.
        local_copy_hint: how the caller can use a local copy instead, e.g.
            ``'--cfg-options model.backbone.init_cfg.checkpoint=PATH'``; part of the error.

    Raises:
        CheckpointDownloadError: one line naming the URL, the reason, the cache folder and the
            local-copy alternatives.
    """
    name = osp.basename(urlparse(url).path)
    if not name:
        raise CheckpointDownloadError(f'checkpoint URL {url} names no file')
    folder = cache_dir()
    path = osp.join(folder, name)
    if osp.isfile(path):
        return path
    os.makedirs(folder, exist_ok=True)
    with _exclusive(path + '.lock'):
        if not osp.isfile(path):  # another process may have fetched it meanwhile
            print(f'Downloading {url} to {path}', file=sys.stderr, flush=True)
            try:
                torch.hub.download_url_to_file(url, path, progress=True)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
                raise CheckpointDownloadError(
                    f'cannot download {url} ({_reason(err)}). Downloads are cached in {folder}: '
                    f'to use a copy you have, put it there as {name}, or {local_copy_hint}'
                ) from None
    with contextlib.suppress(OSError):
        os.remove(path + '.lock')
    return path
