import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Without a GPU, the Triton kernels are tested in Triton's CPU interpreter. The variable must be set
# before vssd_mm.ops.nc_ssd.kernels is imported (triton.jit reads it when decorating).
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

# `make test` runs the suite in pytest-xdist worker processes (TEST_WORKERS, one per core): each
# worker, and every tool it starts, computes on one thread. Two workers of two threads on two
# cores wait on each other's OpenMP threads (the suite took longer than in one process).
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / 'fixtures'


def _command(script: str) -> list:
    """How a user starts ``script``: ``tools/<script>`` (a .sh under bash), or a workbench module
    (``benchmarks.op_speed``) with ``python -m`` from the repository root."""
    if script.startswith('benchmarks.'):
        return [sys.executable, '-m', script]
    launcher = 'bash' if script.endswith('.sh') else sys.executable
    return [launcher, str(REPO / 'tools' / script)]


def run_tool(script: str, *args: str, timeout: float = 600, check: bool = True, cwd=REPO,
             env: dict = None):
    """Run ``script`` (see _command) as a user would (from ``cwd``, default the repository
    root); return the process. A ``.sh`` script runs with PYTHON set to this interpreter.

    ``tests/fixtures`` is put on PYTHONPATH so configs can ``custom_imports`` the toy modules.
    """
    env = {**os.environ, **(env or {}), 'PYTHON': sys.executable}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(FIXTURES), env.get('PYTHONPATH')]))
    proc = subprocess.run([*_command(script), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{script} {" ".join(map(str, args))} exited {proc.returncode}\n'
                             f'--- stdout\n{proc.stdout[-6000:]}\n'
                             f'--- stderr\n{proc.stderr[-6000:]}')
    return proc


def tool_main(script: str):
    """``main(argv)`` of ``tools/<script>`` or of a workbench module (``benchmarks.op_speed``),
    loaded in this process: the same code as the tool's process after the interpreter's start
    (~4 s less per call)."""
    import importlib
    import importlib.util
    if script.startswith('benchmarks.'):
        return importlib.import_module(script).main
    spec = importlib.util.spec_from_file_location(f'tools_{Path(script).stem}',
                                                  REPO / 'tools' / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(autouse=True)
def process_state_as_it_was():
    """Runners and inferencers built in the test process make themselves the current default
    scope, logger, visualizer and message hub (mmengine's ManagerMixin); a later test building a
    model of another library would then look in the wrong registry. The instances a test makes
    are dropped after it."""
    try:
        from mmengine.logging import MessageHub, MMLogger
        from mmengine.registry import DefaultScope
        from mmengine.visualization import Visualizer
    except ImportError:  # a machine with torch alone (the op tests)
        yield
        return
    managers = (DefaultScope, MMLogger, Visualizer, MessageHub)
    before = {cls: list(cls._instance_dict) for cls in managers}
    yield
    for cls, names in before.items():
        for name in [n for n in cls._instance_dict if n not in names]:
            cls._instance_dict.pop(name)


@pytest.fixture
def tool():
    return run_tool


@pytest.fixture
def file_server(tmp_path, monkeypatch):
    """A loopback HTTP server over a fresh folder: ``(folder, base_url, stop)``. Requests to it
    bypass any proxy; ``TORCH_HOME`` points into tmp_path so downloads land in a fresh cache."""
    import functools
    import http.server
    import threading
    folder = tmp_path / 'served'
    folder.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    stopped = []

    def stop():
        if not stopped:
            server.shutdown()
            server.server_close()
            stopped.append(True)
    yield folder, f'http://127.0.0.1:{server.server_address[1]}', stop
    stop()


@pytest.fixture
def kernels_as_for_cuda(monkeypatch):
    """The NC-SSD op's auto mode picks the kernels for any tensor (on CPU: Triton's interpreter,
    set above), no backend from the environment, no earlier give-up; the dispatcher's state is
    reset after the test too."""
    from vssd_mm.ops.nc_ssd import dispatch
    monkeypatch.delenv(dispatch.BACKEND_ENV, raising=False)
    monkeypatch.setattr(dispatch, 'auto_runs_kernels', lambda x: True)
    dispatch.reset()
    yield
    dispatch.reset()
