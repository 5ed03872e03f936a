"""The errors a tool reports as one ``error:`` line: library code raises them, ``tools/`` turn them
into the line and exit status 1 (``exit_on_error``), so that a caller of the library (a test, a
notebook, another tool) gets an exception it can catch instead of an exit."""
import re
from contextlib import contextmanager

from ..models.checkpoints import (CheckpointDownloadError, CheckpointMismatchError,
                                  UnreadableCheckpointError)
from .mmcv_cuda import MmcvCudaOpsError


class ToolError(Exception):
    """Something given to a tool cannot be used (a config, a flag, a dataset, pretrained weights):
    the message says what and what to do."""


TOOL_ERRORS = (ToolError, CheckpointMismatchError, UnreadableCheckpointError,
               CheckpointDownloadError, MmcvCudaOpsError)


@contextmanager
def exit_on_error():
    """In a tool's ``main``: a ``TOOL_ERRORS`` exception ends the tool with ``error: <message>``
    on stderr and exit status 1, not a traceback."""
    try:
        yield
    except TOOL_ERRORS as err:
        raise SystemExit(f'error: {err}') from None


# mmcv's LoadImageFromFile on a file that does not decode (raised in a dataloader worker, re-raised
# by the DataLoader with the worker's traceback in the message)
_UNDECODABLE_IMAGE = re.compile(r'failed to load image: (\S+)')


@contextmanager
def undecodable_images_named():
    """Around a run: an image that fails to decode mid-run is a ``ToolError`` naming the file,
    not a dataloader worker's traceback."""
    try:
        yield
    except AssertionError as err:
        found = _UNDECODABLE_IMAGE.search(str(err))
        if found is None:
            raise
        raise ToolError(f'image {found.group(1)} does not decode (a corrupt file, or not an '
                        'image): replace or remove it; tools/check_dataset.py CONFIG --full finds '
                        'every such file') from None
