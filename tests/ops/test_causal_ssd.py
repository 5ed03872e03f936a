"""Causal SSD / Bi-SSD (the ablation mixers): the chunked reference against the sequential
recurrence, one token at a time, in float64 - forward and gradients, any L, any chunk size."""
import pytest
import torch

from vssd_mm.ops.causal_ssd import bidirectional_ssd_reference, causal_ssd_reference


def recurrence(x, dt, A, B, C, D=None):
    """h_t = exp(dt_t A) h_{t-1} + dt_t B_t^T x_t ; y_t = C_t h_t + D x_t (head h reads group
    h // (H / G)), float64, one token at a time."""
    batch, length, heads, headdim = x.shape
    groups, dstate = B.shape[2], B.shape[3]
    ys = []
    state = torch.zeros(batch, heads, dstate, headdim, dtype=torch.float64)
    for t in range(length):
        g = torch.arange(heads) // (heads // groups)
        Bt, Ct = B[:, t][:, g].double(), C[:, t][:, g].double()          # (batch, heads, N)
        step = dt[:, t].double()                                          # (batch, heads)
        state = (torch.exp(step * A.double())[..., None, None] * state
                 + (step[..., None, None] * Bt[..., :, None] * x[:, t].double()[:, :, None, :]))
        y = torch.einsum('bhn,bhnp->bhp', Ct, state)
        if D is not None:
            y = y + D.double()[:, None] * x[:, t].double()
        ys.append(y)
    return torch.stack(ys, dim=1)


def make(batch, length, heads, headdim, dstate, groups, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, heads, headdim, generator=g)
    dt = torch.nn.functional.softplus(torch.randn(batch, length, heads, generator=g) - 1)
    A = -torch.exp(torch.rand(heads, generator=g) * 2)
    B = torch.randn(batch, length, groups, dstate, generator=g)
    C = torch.randn(batch, length, groups, dstate, generator=g)
    D = torch.randn(heads, generator=g)
    return [t.to(dtype) for t in (x, dt, A, B, C, D)]


@pytest.mark.parametrize('length, chunk', [(1, 16), (7, 4), (64, 16), (130, 64), (50, 1)])
@pytest.mark.parametrize('groups, with_d', [(1, True), (2, True), (2, False)])
def test_chunked_reference_equals_the_recurrence(length, chunk, groups, with_d):
    x, dt, A, B, C, D = make(2, length, 4, 3, 5, groups)
    D = D if with_d else None
    torch.testing.assert_close(causal_ssd_reference(x, dt, A, B, C, D, chunk_size=chunk),
                               recurrence(x, dt, A, B, C, D), rtol=1e-10, atol=1e-10)


def test_gradients_equal_the_recurrence():
    inputs = make(1, 23, 4, 3, 5, 2)
    leaves = [t.clone().requires_grad_() for t in inputs]
    ref_leaves = [t.clone().requires_grad_() for t in inputs]
    dy = torch.randn(1, 23, 4, 3, dtype=torch.float64)
    grads = torch.autograd.grad(causal_ssd_reference(*leaves, chunk_size=8), leaves, dy)
    ref_grads = torch.autograd.grad(recurrence(*ref_leaves), ref_leaves, dy)
    for name, got, ref in zip(['x', 'dt', 'A', 'B', 'C', 'D'], grads, ref_grads):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9, msg=name)


def test_gradcheck():
    inputs = [t.requires_grad_() for t in make(1, 9, 2, 2, 3, 1)]
    assert torch.autograd.gradcheck(lambda *t: causal_ssd_reference(*t, chunk_size=4), inputs)


@pytest.mark.parametrize('dtype, tol', [(torch.float16, 3e-3), (torch.bfloat16, 2e-2)])
def test_half_inputs_accumulate_in_float32(dtype, tol):
    x, dt, A, B, C, D = make(1, 300, 2, 16, 16, 1, dtype=torch.float32)
    y = causal_ssd_reference(*(t.to(dtype) for t in (x, dt)), A, *(t.to(dtype) for t in (B, C)),
                             D)
    exact = recurrence(*(t.to(dtype).double() for t in (x, dt)), A,
                       *(t.to(dtype).double() for t in (B, C)), D)
    assert y.dtype == dtype and torch.isfinite(y).all()
    assert ((y.double() - exact).abs().max() / exact.abs().max()).item() <= tol


def test_bidirectional_is_a_forward_and_a_reversed_scan():
    x, dt, A, B, C, D = make(2, 17, 4, 3, 5, 2)
    y = bidirectional_ssd_reference(x, dt, A, B, C, D, chunk_size=5)
    forward = recurrence(x[:, :, :2], dt[:, :, :2], A[:2], B[:, :, :1], C[:, :, :1], D[:2])
    backward = recurrence(x[:, :, 2:].flip(1), dt[:, :, 2:].flip(1), A[2:], B[:, :, 1:].flip(1),
                          C[:, :, 1:].flip(1), D[2:]).flip(1)
    torch.testing.assert_close(y, torch.cat([forward, backward], 2), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('call, message', [
    (lambda: bidirectional_ssd_reference(*make(1, 4, 4, 2, 2, 1)), 'must be even'),
    (lambda: causal_ssd_reference(*make(1, 4, 3, 2, 2, 2)), 'multiple of ngroups'),
    (lambda: causal_ssd_reference(*make(1, 4, 2, 2, 2, 1), chunk_size=0), 'chunk_size'),
])
def test_bad_arguments_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
