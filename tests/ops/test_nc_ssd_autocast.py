"""The SSD ops under torch.autocast, in graphs and against their fake registrations: they compute
as they promise (float32 accumulation, outputs in the inputs' dtype, the state in float32) whatever
autocast is active around them, on the reference as on the kernels, so a checkpointed block whose
recompute falls back to the reference (a GPU run under --amp) recomputes what it saved."""
import warnings

import pytest
import torch
from torch.utils.checkpoint import checkpoint

from vssd_mm.models.layers import SSDMixer
from vssd_mm.ops import nc_ssd
from vssd_mm.ops.causal_ssd import bidirectional_ssd_reference, causal_ssd_reference
from vssd_mm.ops.nc_ssd import dispatch, kernel_steps

from test_nc_ssd import make_inputs

HALF = [torch.float16, torch.bfloat16]
DTYPES = [torch.float32] + HALF


def _op(x, w, B, C, D, backend='torch'):
    return torch.ops.vssd_mm.nc_ssd(x, w, B, C, D, backend)


@pytest.mark.parametrize('dtype', DTYPES)
def test_reference_ignores_a_surrounding_autocast(dtype):
    # before: under CPU bf16 autocast the reference's einsums ran in bf16 and its state came back
    # bf16 (3e-3 off), while the fake (what graphs plan with) said float32
    x, w, B, C, D = make_inputs(2, 40, 4, 8, 16, 2, dtype=dtype, device='cpu')
    dy = torch.randn_like(x)
    plain = _op(x, w, B, C, D)
    plain_grads = torch.ops.vssd_mm.nc_ssd_backward(dy, x, w, B, C, D, plain[1], 'torch')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        under = _op(x, w, B, C, D)
        grads = torch.ops.vssd_mm.nc_ssd_backward(dy, x, w, B, C, D, under[1], 'torch')
    assert under[1].dtype == torch.float32 and under[0].dtype == dtype
    for got, want in zip(under + grads, plain + plain_grads):
        assert got.dtype == want.dtype and torch.equal(got, want)


@pytest.mark.parametrize('scan', [causal_ssd_reference, bidirectional_ssd_reference])
def test_causal_references_ignore_a_surrounding_autocast(scan):
    torch.manual_seed(0)
    x, dt = torch.randn(1, 30, 4, 8), torch.rand(1, 30, 4) * 0.1
    A, D = -torch.rand(4), torch.randn(4)
    B, C = torch.randn(1, 30, 2, 16), torch.randn(1, 30, 2, 16)
    want = scan(x, dt, A, B, C, D, chunk_size=8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = scan(x, dt, A, B, C, D, chunk_size=8)
    assert got.dtype == torch.float32 and torch.equal(got, want)


@pytest.mark.parametrize('backend', ['torch', 'triton'])
@pytest.mark.parametrize('groups', [1, 2])
@pytest.mark.parametrize('dtype', DTYPES)
def test_opcheck_passes_for_every_dtype_group_count_and_backend(dtype, groups, backend):
    # schema, fake tensors (shapes, dtypes and strides), autograd registration, AOT dispatch;
    # before: ngroups=1 failed test_faketensor (the reference's state had other strides). The
    # kernels run in Triton's interpreter here (tests/conftest.py)
    x, w, B, C, D = make_inputs(2, 24, 4, 8, 16, groups, dtype=dtype, device='cpu')
    args = [t.requires_grad_() for t in (x, w, B, C, D)]
    torch.library.opcheck(torch.ops.vssd_mm.nc_ssd.default, (*args, backend))
    y, kv = _op(*(t.detach() for t in args), backend=backend)
    torch.library.opcheck(torch.ops.vssd_mm.nc_ssd_backward.default,
                          (torch.randn_like(y), *(t.detach() for t in args), kv, backend))


@pytest.mark.parametrize('groups', [1, 2])
def test_inductor_compiles_forward_and_backward_through_the_reference(groups):
    # before: Inductor stopped on ngroups=1 ("expected ... stride 8==48 ... Error in op:
    # torch.ops.vssd_mm.nc_ssd"): the reference returned a state of other strides than the fake's
    torch._dynamo.reset()
    inputs = make_inputs(2, 24, 4, 8, 16, groups, device='cpu')

    def loss(x, w, B, C, D):
        return (nc_ssd(x, w, B, C, D, backend='torch') * 1.5).square().sum()
    eager = [t.clone().requires_grad_() for t in inputs]
    compiled = [t.clone().requires_grad_() for t in inputs]
    loss(*eager).backward()
    torch.compile(loss, backend='inductor', fullgraph=True)(*compiled).backward()
    for got, want in zip(compiled, eager):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures('kernels_as_for_cuda')
def test_checkpointed_mixer_under_amp_trains_on_when_the_recompute_falls_back(monkeypatch):
    # a block checkpointed under autocast (VSSD(with_cp=True), --amp): the forward ran the kernels
    # (Triton's interpreter here), the recompute in the backward falls back to the reference;
    # the recompute must give the tensors the forward saved, same dtypes (before: the reference's
    # state came back in bf16 -> torch.utils.checkpoint.CheckpointError)
    torch.manual_seed(0)
    mixer = SSDMixer(dim=16, num_heads=2, d_state=16)
    tokens = torch.randn(2, 6 * 5, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = checkpoint(mixer, tokens, (6, 5), use_reentrant=False)

    def broken(*args):
        raise RuntimeError('PTXAS error: a kernel that stopped compiling')
    monkeypatch.setattr(kernel_steps, 'kernel_forward', broken)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # the one fallback warning
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out.float().square().sum().backward()
    assert dispatch._given_up is not None  # the recompute did fall back
    assert tokens.grad is not None and torch.isfinite(tokens.grad).all()
    assert all(p.grad is not None for p in mixer.parameters())
