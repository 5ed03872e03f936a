"""What happens when the Triton kernels cannot run: simulated failures (compile / launch errors,
an older card) on CPU. Auto mode warns once and continues on the reference with the same numbers;
an explicit backend='triton' stops with one line naming the switch; VSSD_MM_NC_SSD_BACKEND
chooses from the environment.

Without CUDA, 'auto' is made to pick the kernels and they run in Triton's interpreter
(tests/conftest.py sets TRITON_INTERPRET=1).
"""
import types
import warnings

import pytest
import torch

from vssd_mm.ops import nc_ssd, nc_ssd_reference
from vssd_mm.ops.nc_ssd import NCSSDKernelError, dispatch, kernel_steps, launch

from test_nc_ssd import DEVICE, make_inputs


class Calls:
    """A stand-in for a kernel entry point that counts calls and fails like a broken kernel."""

    def __init__(self, error):
        self.error, self.count = error, 0

    def __call__(self, *args, **kwargs):
        self.count += 1
        raise self.error


pytestmark = pytest.mark.usefixtures('kernels_as_for_cuda')


def inputs(requires_grad=False):
    tensors = make_inputs(2, 40, 2, 16, 16, 1)
    return [t.requires_grad_(requires_grad) for t in tensors]


def test_auto_runs_the_kernels_when_they_work(monkeypatch):
    calls = []
    run = launch.Launch.__call__
    monkeypatch.setattr(launch.Launch, '__call__',
                        lambda self: calls.append(self.name) or run(self))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        y = nc_ssd(*inputs())
    assert calls == ['kv_reduce', 'apply']
    torch.testing.assert_close(y, nc_ssd_reference(*inputs()), rtol=1e-4, atol=1e-4)


def test_backward_reads_the_forwards_state_instead_of_recomputing_it(monkeypatch):
    """One op in eager mode as in graphs: its forward hands KV to the backward, which reduces
    only dKV; the gradients are the reference's."""
    calls = []
    run = launch.Launch.__call__
    monkeypatch.setattr(launch.Launch, '__call__',
                        lambda self: calls.append(self.name) or run(self))
    leaves = inputs(requires_grad=True)
    y = nc_ssd(*leaves)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).to(y)
    grads = torch.autograd.grad(y, leaves, dy)
    assert calls.count('kv_reduce') == 2 and calls.count('apply') == 1, calls
    ref_leaves = inputs(requires_grad=True)
    ref_grads = torch.autograd.grad(nc_ssd_reference(*ref_leaves), ref_leaves, dy)
    for got, ref in zip(grads, ref_grads):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_auto_forward_failure_warns_once_then_uses_the_reference(monkeypatch):
    broken = Calls(RuntimeError('PTXAS error: simulated\nptxas fatal: more detail'))
    monkeypatch.setattr(launch.Launch, '__call__', broken)
    with pytest.warns(RuntimeWarning) as record:
        y = nc_ssd(*inputs())
    assert len(record) == 1
    message = str(record[0].message)
    assert 'the Triton kernels failed' in message
    assert 'RuntimeError: PTXAS error: simulated' in message
    assert 'more detail' not in message  # one line
    assert 'VSSD_MM_NC_SSD_BACKEND=torch' in message and 'nc_ssd_backend="torch"' in message
    assert torch.equal(y, nc_ssd_reference(*inputs()))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again = nc_ssd(*inputs())
    assert broken.count == 1  # not tried again
    assert torch.equal(again, y)


def test_explicit_triton_failure_is_one_clear_error(monkeypatch):
    original = RuntimeError('PTXAS error: simulated')
    monkeypatch.setattr(launch.Launch, '__call__', Calls(original))
    with pytest.raises(NCSSDKernelError) as info:
        nc_ssd(*inputs(), backend='triton')
    message = str(info.value)
    assert message.startswith('nc_ssd: the Triton kernels failed on ')
    assert '(RuntimeError: PTXAS error: simulated)' in message
    assert 'VSSD_MM_NC_SSD_BACKEND=torch' in message and '\n' not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no Triton trace
    assert info.value.kernel_error is original


def test_auto_backward_failure_falls_back_to_reference_gradients(monkeypatch):
    broken = Calls(RuntimeError('out of resources: shared memory, Required: 262144'))
    monkeypatch.setattr(kernel_steps, 'backward_launches', broken)
    leaves = inputs(requires_grad=True)
    y = nc_ssd(*leaves)  # forward by the kernels
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y)
    with pytest.warns(RuntimeWarning, match='out of resources'):
        grads = torch.autograd.grad(y, leaves, dy)
    ref_leaves = inputs(requires_grad=True)
    ref_grads = torch.autograd.grad(nc_ssd_reference(*ref_leaves), ref_leaves, dy)
    assert broken.count == 1
    for got, ref in zip(grads, ref_grads):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_explicit_triton_backward_failure_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(kernel_steps, 'backward_launches', Calls(RuntimeError('simulated')))
    leaves = inputs(requires_grad=True)
    y = nc_ssd(*leaves, backend='triton')
    with pytest.raises(NCSSDKernelError, match=r'failed on .*\(RuntimeError: simulated\)'):
        y.sum().backward()


def test_out_of_memory_is_not_a_kernel_failure(monkeypatch):
    monkeypatch.setattr(launch.Launch, '__call__',
                        Calls(torch.OutOfMemoryError('CUDA out of memory. Tried to allocate')))
    with pytest.raises(torch.OutOfMemoryError):
        nc_ssd(*inputs())


def test_environment_variable_chooses_the_reference(monkeypatch):
    broken = Calls(AssertionError('the kernels must not run'))
    monkeypatch.setattr(launch.Launch, '__call__', broken)
    monkeypatch.setenv('VSSD_MM_NC_SSD_BACKEND', 'torch')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        y = nc_ssd(*inputs())
    assert broken.count == 0 and torch.equal(y, nc_ssd_reference(*inputs()))
    # an explicit argument wins over the environment
    with pytest.raises(NCSSDKernelError):
        nc_ssd(*inputs(), backend='triton')


def test_environment_variable_errors(monkeypatch):
    monkeypatch.setenv('VSSD_MM_NC_SSD_BACKEND', 'cuda')
    with pytest.raises(ValueError, match=r"VSSD_MM_NC_SSD_BACKEND='cuda' is not a backend; set "
                                         r"it to one of \('auto', 'triton', 'torch'\)"):
        nc_ssd(*inputs())
    monkeypatch.setenv('VSSD_MM_NC_SSD_BACKEND', 'triton')
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    with pytest.raises(RuntimeError, match='VSSD_MM_NC_SSD_BACKEND=triton needs CUDA tensors'):
        nc_ssd(*make_inputs(1, 5, 2, 4, 4, 1, device='cpu'))


def test_older_card_auto_warns_once_and_explicit_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'Tesla T4')
    t4 = types.SimpleNamespace(device=torch.device('cuda', 0), is_cuda=True, dtype=torch.float32)
    reason = dispatch.unsupported_reason(t4.device)
    assert 'compute capability 8.0 or newer; this is Tesla T4 (sm_75)' in reason
    with pytest.warns(RuntimeWarning, match=r'Tesla T4 \(sm_75\).*PyTorch reference'):
        assert dispatch.choose(t4, 'auto') == (False, False)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert dispatch.choose(t4, 'auto') == (False, False)
    with pytest.raises(RuntimeError, match=r'backend="triton" needs a GPU of compute capability '
                                           r'8.0 or newer; this is Tesla T4 \(sm_75\)'):
        dispatch.choose(t4, 'triton')


@pytest.mark.skipif(DEVICE != 'cpu', reason='the reference path of CPU tensors')
def test_auto_on_cpu_tensors_never_warns(monkeypatch):
    monkeypatch.setattr(dispatch, 'auto_runs_kernels', lambda x: x.is_cuda)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        y = nc_ssd(*make_inputs(1, 9, 2, 4, 4, 1, device='cpu'))
    assert torch.equal(y, nc_ssd_reference(*make_inputs(1, 9, 2, 4, 4, 1, device='cpu')))
