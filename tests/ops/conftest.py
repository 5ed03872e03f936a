"""Fixtures of the op tests."""
import pytest

from vssd_mm.ops.nc_ssd import dispatch


@pytest.fixture
def kernels_as_for_cuda(monkeypatch):
    """Auto mode picks the kernels for any tensor (on CPU: Triton's interpreter, which
    tests/conftest.py turns on), no backend from the environment, no earlier give-up; the
    dispatcher's state is reset after the test too."""
    monkeypatch.delenv(dispatch.BACKEND_ENV, raising=False)
    monkeypatch.setattr(dispatch, 'auto_runs_kernels', lambda x: True)
    dispatch.reset()
    yield
    dispatch.reset()
