"""No value travels from the device to the host in VSSD's forward or backward, nor in the NC-SSD
op: on a GPU each such read waits for all queued work. Counted by a dispatch mode that sees every
ATen call, the op's own body included; on fake CUDA tensors any read is an error by itself."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from vssd_mm.models import VSSD
from vssd_mm.ops import nc_ssd
from vssd_mm.ops.nc_ssd import dispatch, op

# the ATen calls that hand a tensor's value to Python (item, bool, equal, a branch on a value)
HOST_READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default,
              torch.ops.aten.equal.default}
OP_BODIES = {torch.ops.vssd_mm.nc_ssd.default: op.nc_ssd_op._init_fn,
             torch.ops.vssd_mm.nc_ssd_backward.default: op.nc_ssd_backward_op._init_fn}


class HostReads(TorchDispatchMode):
    """Records every host read; runs the NC-SSD ops' bodies under itself, so their reads count."""

    def __init__(self):
        super().__init__()
        self.reads, self.calls = [], set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.add(func)
        if func in HOST_READS:
            self.reads.append(str(func))
        if func in OP_BODIES:
            with self:
                return OP_BODIES[func](*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


def test_host_reads_are_counted():  # the counter itself: a branch on a value is seen
    with HostReads() as mode:
        bool(torch.ones(2).sum() > 0)
    assert mode.reads == ['aten._local_scalar_dense.default']


@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
def test_vssd_forward_and_backward_read_nothing_back(training):
    # before: one read per forward (the NaN/Inf check, now VSSD(check_finite=True))
    torch.manual_seed(0)
    model = VSSD(arch='micro', drop_path_rate=0.1, with_cp=training).train(training)
    image = torch.randn(2, 3, 64, 96, requires_grad=True)
    with HostReads() as mode:
        sum(o.sum() for o in model(image)).backward()
    assert torch.ops.aten.einsum.default in mode.calls  # the op's reference body ran under the mode
    assert torch.ops.vssd_mm.nc_ssd_backward.default in mode.calls
    assert mode.reads == []


@pytest.mark.parametrize('groups', [1, 2])
def test_nc_ssd_op_reads_nothing_back(groups):
    x = torch.randn(2, 40, 4, 8, requires_grad=True)
    w = torch.rand(2, 40, 4, requires_grad=True)
    B = torch.randn(2, 40, groups, 16, requires_grad=True)
    C = torch.randn(2, 40, groups, 16, requires_grad=True)
    D = torch.randn(4, requires_grad=True)
    with HostReads() as mode:
        nc_ssd(x, w, B, C, D).square().sum().backward()
    assert mode.reads == [] and torch.ops.aten.einsum.default in mode.calls


def test_vssd_on_cuda_tensors_reads_nothing_back():
    # fake CUDA tensors (no GPU needed): the GPU's path through the model, dense maps and no
    # in-place steps; a fake tensor has no values, so any read back raises
    model = VSSD(arch='micro', drop_path_rate=0.1).train()
    with FakeTensorMode(allow_non_fake_inputs=True):
        model = model.to('cuda')
        outs = model(torch.randn(2, 3, 64, 96, device='cuda'))
    assert [o.device.type for o in outs] == ['cuda'] * 4
    assert [tuple(o.shape) for o in outs] == [(2, 48 * 2 ** i, 16 // 2 ** i, 24 // 2 ** i)
                                              for i in range(4)]


def test_float64_cuda_inputs_run_the_reference():
    # the kernels compute in float32: float64 (a gradient check) goes to the reference, and does
    # not switch the kernels off for the rest of the process
    dispatch.reset()
    with FakeTensorMode():
        x64 = torch.empty(1, 8, 2, 4, device='cuda', dtype=torch.float64)
    assert dispatch.choose(x64, 'auto') == (False, False)
    assert dispatch._given_up is None
    with pytest.raises(RuntimeError, match='backend="triton" runs float16, bfloat16 and float32'):
        dispatch.choose(x64, 'triton')


DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize('groups', [1, 2])
@pytest.mark.parametrize('x_dtype', DTYPES)
def test_fake_op_gives_the_real_ops_dtypes_shapes_and_strides(x_dtype, groups):
    # what torch.compile / torch.export plan with (the fake) is what the op returns, for every
    # input dtype and every dtype of w and D
    for w_dtype in DTYPES:
        for d_dtype in (None, w_dtype, torch.float32):
            x = torch.randn(2, 12, 4, 8).to(x_dtype)
            w = torch.rand(2, 12, 4).to(w_dtype)
            B, C = (torch.randn(2, 12, groups, 16).to(x_dtype) for _ in range(2))
            D = None if d_dtype is None else torch.randn(4).to(d_dtype)
            dy = torch.randn(2, 12, 4, 8).to(x_dtype)
            real = torch.ops.vssd_mm.nc_ssd(x, w, B, C, D, 'torch')
            real = real + torch.ops.vssd_mm.nc_ssd_backward(dy, x, w, B, C, D, real[1], 'torch')
            with FakeTensorMode(allow_non_fake_inputs=True):
                fake = torch.ops.vssd_mm.nc_ssd(x, w, B, C, D, 'torch')
                fake = fake + torch.ops.vssd_mm.nc_ssd_backward(dy, x, w, B, C, D, real[1],
                                                               'torch')
            for name, r, f in zip(('y', 'kv', 'dx', 'dw', 'dB', 'dC', 'dD'), real, fake):
                assert (r.dtype, r.shape, r.stride()) == (f.dtype, f.shape, f.stride()), \
                    (name, w_dtype, d_dtype)
