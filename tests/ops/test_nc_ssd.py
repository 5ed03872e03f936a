"""NC-SSD: the reference against a hand computation, and the Triton kernels against the reference.

Without CUDA the kernels run in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1).
"""
import itertools

import pytest
import torch

from vssd_mm.ops import nc_ssd, nc_ssd_reference

DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
# max |triton - reference| / max |reference|: output rounding dominates for the half types
RTOL = {torch.float32: 1e-5 if DEVICE == 'cpu' else 2e-3, torch.float16: 4e-3,
        torch.bfloat16: 3e-2}


def make_inputs(batch, tokens, heads, headdim, dstate, groups, dtype=torch.float32, seed=0,
                with_d=True, device=DEVICE):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, tokens, heads, headdim, generator=g)
    w = torch.rand(batch, tokens, heads, generator=g) * 0.2 + 0.01      # VSSD: dt * exp(A_log) > 0
    B = torch.randn(batch, tokens, groups, dstate, generator=g)
    C = torch.randn(batch, tokens, groups, dstate, generator=g)
    D = torch.randn(heads, generator=g) if with_d else None
    cast = dict(device=device)
    return (x.to(dtype=dtype, **cast), w.to(**cast), B.to(dtype=dtype, **cast),
            C.to(dtype=dtype, **cast), None if D is None else D.to(**cast))


def loops(x, w, B, C, D):
    """The defining sums, one scalar at a time (float64)."""
    batch, tokens, heads, headdim = x.shape
    groups, dstate = B.shape[2], B.shape[3]
    y = torch.zeros(x.shape, dtype=torch.float64)
    for b, h in itertools.product(range(batch), range(heads)):
        g = h % groups
        kv = torch.zeros(dstate, headdim, dtype=torch.float64)
        for m in range(tokens):
            kv += torch.outer(B[b, m, g].double(), w[b, m, h].double() * x[b, m, h].double())
        for l in range(tokens):
            y[b, l, h] = C[b, l, g].double() @ kv
            if D is not None:
                y[b, l, h] += D[h].double() * x[b, l, h].double()
    return y


@pytest.mark.parametrize('groups, with_d', [(1, True), (2, True), (1, False)])
def test_reference_equals_hand_sums(groups, with_d):
    x, w, B, C, D = make_inputs(2, 5, 4, 3, 2, groups, with_d=with_d, device='cpu')
    expected = loops(x, w, B, C, D)
    torch.testing.assert_close(nc_ssd_reference(x, w, B, C, D).double(), expected,
                               rtol=1e-5, atol=1e-5)


def test_reference_ungrouped_layout_equals_one_group():
    x, w, B, C, D = make_inputs(1, 7, 2, 4, 3, 1, device='cpu')
    torch.testing.assert_close(nc_ssd_reference(x, w, B[:, :, 0], C[:, :, 0], D),
                               nc_ssd_reference(x, w, B, C, D))


@pytest.mark.parametrize('groups', [1, 2])
def test_reference_gradcheck_float64(groups):
    x, w, B, C, D = (t.double().requires_grad_() for t in
                     make_inputs(1, 6, 2, 3, 4, groups, device='cpu'))
    assert torch.autograd.gradcheck(nc_ssd_reference, (x, w, B, C, D))


def _compare(inputs, dtype, backend_kwargs=None):
    """Forward and all gradients of the Triton path vs the reference on the same inputs."""
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in inputs]
    ref_leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in inputs]
    y = nc_ssd(*leaves, backend='triton')
    y_ref = nc_ssd_reference(*ref_leaves)
    assert y.dtype == dtype and y.shape == y_ref.shape
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y)
    wanted = [t for t in leaves if t is not None]
    grads = torch.autograd.grad(y, wanted, dy)
    ref_grads = torch.autograd.grad(y_ref, [t for t in ref_leaves if t is not None], dy)
    names = ['y', 'dx', 'dw', 'dB', 'dC', 'dD']
    for name, got, ref in zip(names, (y, *grads), (y_ref, *ref_grads)):
        assert got.dtype == ref.dtype and got.shape == ref.shape, name
        scale = ref.float().abs().max().clamp_min(1e-6)
        err = (got.float() - ref.float()).abs().max() / scale
        assert err <= RTOL[dtype], f'{name}: relative error {err:.2e} > {RTOL[dtype]:.0e}'


# (batch, tokens, heads, headdim P, dstate N, ngroups): L = 1, odd L, L beyond one tile and not a
# multiple of any block size, heads 1..8, P and N of 16/32/64 and VSSD-micro's 48, and VSSD-T's
# stage 0 at 224x224 (56 * 56 tokens, 2 heads of 64)
SHAPES = [(1, 1, 1, 16, 16, 1), (2, 37, 3, 32, 16, 1), (1, 130, 2, 48, 48, 1),
          (1, 67, 8, 64, 64, 1), (2, 33, 4, 16, 32, 2), (1, 3136, 2, 64, 64, 1)]
# VSSD-T's stages 0-2 on a 1344 x 800 detection input: 25 s a case in the interpreter, so CUDA only
# (benchmarks/gpu_check.sh runs them on a lent GPU)
DETECTION_SHAPES = [(2, 67_200, 2, 64, 64, 1), (2, 16_800, 4, 64, 64, 1), (2, 4_200, 8, 64, 64, 1)]


@pytest.mark.parametrize('shape', SHAPES, ids=lambda s: 'b{}_L{}_H{}_P{}_N{}_G{}'.format(*s))
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).split('.')[-1])
def test_triton_matches_reference(shape, dtype):
    _compare(make_inputs(*shape, dtype=dtype), dtype)


@pytest.mark.skipif(DEVICE != 'cuda', reason='full detection sizes: CUDA only')
@pytest.mark.parametrize('shape', DETECTION_SHAPES,
                         ids=lambda s: 'b{}_L{}_H{}_P{}_N{}_G{}'.format(*s))
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).split('.')[-1])
def test_triton_matches_reference_at_detection_size(shape, dtype):
    _compare(make_inputs(*shape, dtype=dtype), dtype)


def test_triton_without_d():
    _compare(make_inputs(2, 20, 2, 16, 16, 1, with_d=False), torch.float32)


def test_triton_on_non_contiguous_views():
    # the VSSD layer slices x, B and C out of one (batch, L, E*D + 2N) activation, and w can arrive
    # transposed; the kernels read all of them through their strides
    batch, tokens, heads, headdim, dstate = 2, 45, 4, 16, 32
    g = torch.Generator().manual_seed(3)
    xbc = torch.randn(batch, tokens, heads * headdim + 2 * dstate, generator=g).to(DEVICE)
    x = xbc[..., :heads * headdim].view(batch, tokens, heads, headdim)
    B = xbc[..., heads * headdim:heads * headdim + dstate]
    C = xbc[..., heads * headdim + dstate:]
    w = (torch.rand(batch, heads, tokens, generator=g) * 0.1).to(DEVICE).transpose(1, 2)
    D = torch.randn(heads, generator=g).to(DEVICE)
    assert not (x.is_contiguous() or B.is_contiguous() or w.is_contiguous())
    _compare((x, w, B, C, D), torch.float32)


def test_fp16_detection_scale_does_not_overflow():
    # a stage-1 map of a 1344 x 800 detection input: 336 * 200 = 67,200 tokens. KV sums over all of
    # them; it stays fp32 inside the kernels, so fp16 I/O matches the fp32 result.
    x, w, B, C, D = make_inputs(1, 67_200, 1, 48, 48, 1, dtype=torch.float16)
    y = nc_ssd(x, w, B, C, D, backend='triton')
    y32 = nc_ssd_reference(x.float(), w, B.float(), C.float(), D)
    assert torch.isfinite(y).all()
    assert y32.abs().max() > 100  # the sum really is large
    assert ((y.float() - y32).abs().max() / y32.abs().max()) < 4e-3


def test_non_finite_inputs_propagate_without_crashing():
    x, w, B, C, D = make_inputs(2, 20, 2, 16, 16, 1)
    x[0, 3, 1, 0] = float('nan')
    y = nc_ssd(x, w, B, C, D, backend='triton')
    y_ref = nc_ssd_reference(x, w, B, C, D)
    # channel 0 of head 1 in image 0 reaches every token through the global state, nothing else
    assert torch.isnan(y[0, :, 1, 0]).all()
    assert torch.equal(torch.isnan(y), torch.isnan(y_ref))
    finite = ~torch.isnan(y_ref)
    torch.testing.assert_close(y[finite], y_ref[finite], rtol=1e-4, atol=1e-4)


def test_auto_backend_on_cpu_is_the_reference():
    x, w, B, C, D = make_inputs(1, 9, 2, 4, 4, 1, device='cpu')
    assert torch.equal(nc_ssd(x, w, B, C, D), nc_ssd_reference(x, w, B, C, D))


def test_triton_backend_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    x, w, B, C, D = make_inputs(1, 9, 2, 4, 4, 1, device='cpu')
    with pytest.raises(RuntimeError, match='needs CUDA tensors, got tensors on cpu'):
        nc_ssd(x, w, B, C, D, backend='triton')


@pytest.mark.parametrize('mutate, error, message', [
    (lambda a: a.update(x=a['x'][0]), ValueError, r'x must be \(batch, tokens, heads, headdim\)'),
    (lambda a: a.update(w=a['w'][..., :1]), ValueError, r'w must be \(batch, tokens, heads\)'),
    (lambda a: a.update(C=a['C'][:, :4]), ValueError, 'B and C must have the same shape'),
    (lambda a: a.update(B=a['B'].expand(-1, -1, 3, -1), C=a['C'].expand(-1, -1, 3, -1)),
     ValueError, r'heads \(2\) must be a multiple of ngroups \(3\)'),
    (lambda a: a.update(D=a['D'][:1]), ValueError, r'D must be \(heads,\)'),
    (lambda a: a.update(B=a['B'].double(), C=a['C'].double()), TypeError, 'must share a dtype'),
    (lambda a: a.update(x=a['x'].long()), TypeError, 'x must be a floating-point tensor'),
    (lambda a: a.update(backend='cuda'), ValueError, 'backend must be one of'),
])
def test_invalid_inputs_are_named(mutate, error, message):
    x, w, B, C, D = make_inputs(1, 9, 2, 4, 4, 1, device='cpu')
    args = dict(x=x, w=w, B=B, C=C, D=D)
    mutate(args)
    with pytest.raises(error, match=message):
        nc_ssd(**args)
