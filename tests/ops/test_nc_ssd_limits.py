"""What a GPU run meets at the edges of the NC-SSD kernels, checked on the CPU (the kernels run in
Triton's interpreter, tests/conftest.py): torch's TF32 switch old and new, the device guard of the
launches, and the inputs the kernels cannot serve (strided D is served by a contiguous copy;
offsets past int32, grids past CUDA's limits and tiles past the measured ones go to the
reference per call in auto mode, and are one clear error with backend='triton'). Sizes the CPU
cannot hold are checked on meta tensors: the launches are built from shapes and strides alone.
"""
import contextlib
import warnings

import pytest
import torch

from vssd_mm.ops import nc_ssd, nc_ssd_reference
from vssd_mm.ops.nc_ssd import NCSSDKernelError, dispatch, kernel_steps, launch
from vssd_mm.variants import nc_ssd_shapes

from test_nc_ssd import RTOL, make_inputs


pytestmark = pytest.mark.usefixtures('kernels_as_for_cuda')


@pytest.fixture(autouse=True)
def fp32_switches():
    """Put torch's float32 precision switches back as they were: the legacy state
    (``torch.get_float32_matmul_precision``), the generic one and the CUDA / oneDNN matmul ones
    (their getters resolve 'none' to the parent, so 'none' is restored where it resolves right)."""
    legacy = torch.get_float32_matmul_precision()
    generic = torch.backends.fp32_precision
    matmuls = [(m, m.fp32_precision) for m in (torch.backends.cuda.matmul,
                                                torch.backends.mkldnn.matmul)]
    yield
    torch.set_float32_matmul_precision(legacy)
    torch.backends.fp32_precision = generic
    for module, precision in matmuls:
        module.fp32_precision = 'none'
        if module.fp32_precision != precision:
            module.fp32_precision = precision


def assert_near(got, ref, name=''):
    """max |got - ref| / max |ref| within the fp32 tolerance of the kernels' tests (TF32 dots on
    a GPU)."""
    assert got.dtype == ref.dtype and got.shape == ref.shape, name
    err = (got - ref).abs().max() / ref.abs().max().clamp_min(1e-6)
    assert err <= RTOL[torch.float32], f'{name}: relative error {err:.2e}'


class LaunchLog:
    """Launch.__call__ replaced: records the kernel names, then launches."""

    def __init__(self, monkeypatch):
        self.names, run = [], launch.Launch.__call__
        monkeypatch.setattr(launch.Launch, '__call__',
                            lambda la: self.names.append(la.name) or run(la))


def _fp32_launch():
    x, w, B, _, _ = make_inputs(1, 8, 2, 16, 16, 1, device='cpu')
    return launch.kv_reduce_launch(B, x, w, heads=2)[0]


def _precision_chosen():
    la = _fp32_launch()
    assert la.settings == launch.SETTINGS['kv_reduce'][launch.operand_class(torch.float32)]
    return la.constexprs['PRECISION']


# ---- TF32: torch's current switch (fp32_precision) and the legacy one (allow_tf32)

def test_fp32_dots_follow_the_new_switch_and_its_parent():
    matmul = torch.backends.cuda.matmul
    matmul.fp32_precision = 'tf32'
    assert _precision_chosen() == 'tf32' and launch.operand_class(torch.float32) == 'tf32'
    matmul.fp32_precision = 'ieee'
    assert _precision_chosen() == 'tf32x3' and launch.operand_class(torch.float32) == 'tf32x3'
    # 'none' inherits torch.backends.fp32_precision, the parent of every backend's setting
    matmul.fp32_precision = 'none'
    torch.backends.fp32_precision = 'tf32'
    assert _precision_chosen() == 'tf32'
    torch.backends.fp32_precision = 'ieee'
    assert _precision_chosen() == 'tf32x3'
    assert launch.operand_class(torch.float16) == launch.operand_class(torch.bfloat16) == 'half'


def test_fp32_dots_follow_the_legacy_switch():
    torch.backends.cuda.matmul.allow_tf32 = True
    assert _precision_chosen() == 'tf32'
    torch.backends.cuda.matmul.allow_tf32 = False
    assert _precision_chosen() == 'tf32x3'
    torch.set_float32_matmul_precision('high')
    assert _precision_chosen() == 'tf32'


def test_fp32_forward_and_backward_run_the_kernels_after_the_new_switch(monkeypatch):
    torch.backends.cuda.matmul.fp32_precision = 'tf32'
    with pytest.raises(RuntimeError, match='mix of the legacy and new APIs'):
        torch.backends.cuda.matmul.allow_tf32  # the read that must not be made
    log = LaunchLog(monkeypatch)
    leaves = [t.requires_grad_() for t in make_inputs(2, 40, 2, 16, 16, 1)]
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a fallback would warn
        y = nc_ssd(*leaves)
        grads = torch.autograd.grad(y, leaves, torch.ones_like(y))
    assert log.names == ['kv_reduce', 'apply', 'kv_reduce', 'bwd_x', 'bwd_bc', 'bwd_bc']
    assert dispatch.fallbacks() == dict(given_up=None, routed={})
    ref_leaves = [t.detach().clone().requires_grad_() for t in leaves]
    y_ref = nc_ssd_reference(*ref_leaves)
    ref_grads = torch.autograd.grad(y_ref, ref_leaves, torch.ones_like(y_ref))
    for got, ref in zip((y, *grads), (y_ref, *ref_grads)):
        assert_near(got, ref)


# ---- the device guard

def test_launches_run_inside_the_guard_of_the_tensors_device(monkeypatch):
    asked, inside, during = [], [], []

    @contextlib.contextmanager
    def guard(device):
        asked.append(device)
        inside.append(True)
        yield
        inside.pop()

    monkeypatch.setattr(kernel_steps, 'device_guard', guard)
    run = launch.Launch.__call__
    monkeypatch.setattr(launch.Launch, '__call__',
                        lambda la: during.append((la.name, bool(inside))) or run(la))
    leaves = [t.requires_grad_() for t in make_inputs(1, 20, 2, 16, 16, 1)]
    nc_ssd(*leaves).sum().backward()
    assert asked == [leaves[0].device] * 2  # the forward and the backward
    assert len(during) == 6 and all(guarded for _, guarded in during), during


def test_the_guard_of_cuda_tensors_makes_their_device_current():
    guard = launch.device_guard(torch.device('cuda', 1))
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1
    assert isinstance(launch.device_guard(torch.device('cpu')), contextlib.nullcontext)


# ---- strided and expanded D: read through a contiguous float32 copy

@pytest.mark.parametrize('view', ['strided', 'expanded'])
def test_strided_or_expanded_d_matches_the_reference(view):
    x, w, B, C, _ = make_inputs(2, 40, 3, 16, 16, 1)
    g = torch.Generator().manual_seed(5)
    base = torch.randn(6 if view == 'strided' else 1, generator=g).to(x.device)

    def run(fn, **kwargs):
        leaves = [t.clone().requires_grad_() for t in (x, w, B, C, base)]
        D = leaves[-1][::2] if view == 'strided' else leaves[-1].expand(3)
        assert not D.is_contiguous() or D.stride() == (0,)
        y = fn(*leaves[:4], D, **kwargs)
        return (y, *torch.autograd.grad(y, leaves, torch.ones_like(y)))

    for name, got, ref in zip(['y', 'dx', 'dw', 'dB', 'dC', 'dD'],
                              run(nc_ssd, backend='triton'), run(nc_ssd_reference)):
        assert_near(got, ref, name)


# ---- inputs the kernels cannot serve

def _meta_operands(batch, tokens, heads, headdim, dstate, dtype=torch.float32, x_strides=None):
    x = (torch.empty(batch, tokens, heads, headdim, device='meta', dtype=dtype)
         if x_strides is None else
         torch.empty_strided((batch, tokens, heads, headdim), x_strides, device='meta',
                             dtype=dtype))
    w = torch.empty(batch, tokens, heads, device='meta')
    B = torch.empty(batch, tokens, 1, dstate, device='meta', dtype=dtype)
    D = torch.empty(heads, device='meta')
    return x, w, B, B.clone(), D, torch.empty(x.shape, device='meta', dtype=dtype)


def _forward_launches(x, w, B, C, D, dy):
    reduce, partial = launch.kv_reduce_launch(B, x, w, x.shape[2])
    kv = partial.sum(2)
    return [reduce, launch.apply_launch(C, kv, x, D)[0]], kv


def _backward_launches(x, w, B, C, D, dy):
    _, kv = _forward_launches(x, w, B, C, D, dy)
    reduce, partial = launch.kv_reduce_launch(C, dy, None, x.shape[2])
    return [reduce, *launch.backward_launches(x, w, B, C, D, dy, kv, partial.sum(2))[0]]


def test_largest_offset_from_sizes_and_strides():
    assert launch.largest_offset((2, 3, 4), (12, 4, 1)) == 23
    assert launch.largest_offset((2, 3, 4), (100, 4, 1)) == 111            # a slice
    assert launch.largest_offset((5, 3), (0, 1)) == 2                      # expanded
    assert launch.largest_offset((5, 0), (1, 1)) == 0                      # empty
    assert launch.largest_offset((125, 67_200, 256), (67_200 * 256, 256, 1)) == 2**31 + 2_916_351


def test_offsets_at_the_int32_boundary():
    inner = 7 * 32 + 1 * 16 + 15                          # (8, 2, 16) contiguous below batch
    at_limit = (2**31 - 1 - inner, 32, 16, 1)             # batch 2: largest offset 2^31 - 1
    operands = _meta_operands(2, 8, 2, 16, 16, x_strides=at_limit)
    assert launch.largest_offset(operands[0].shape, operands[0].stride()) == 2**31 - 1
    assert launch.unserved(_forward_launches(*operands)[0]) is None
    assert launch.unserved(_backward_launches(*operands)) is None
    past = _meta_operands(2, 8, 2, 16, 16, x_strides=(at_limit[0] + 1, 32, 16, 1))
    for launches in (_forward_launches(*past)[0], _backward_launches(*past)):
        kind, reason = launch.unserved(launches)
        assert kind == 'offset' and 'up to element 2,147,483,648' in reason, reason


@pytest.mark.parametrize('batch, served', [(124, True), (125, False)])
def test_vssd_t_stage_0_at_detection_size_passes_int32_offsets_at_batch_125(batch, served):
    """The mixer's x, B, C are slices of one (batch, 336 * 200, channels) fp16 activation."""
    shape = nc_ssd_shapes('tiny')[0]
    act = torch.empty(batch, 336 * 200, shape.channels, device='meta', dtype=torch.float16)
    inner, gn = shape.heads * shape.headdim, shape.ngroups * shape.dstate
    x = act[..., :inner].unflatten(-1, (shape.heads, shape.headdim))
    B = act[..., inner:inner + gn].unflatten(-1, (shape.ngroups, shape.dstate))
    C = act[..., inner + gn:].unflatten(-1, (shape.ngroups, shape.dstate))
    w = torch.empty(x.shape[:3], device='meta')
    launches, _ = _forward_launches(x, w, B, C, torch.empty(shape.heads, device='meta'), None)
    why_not = launch.unserved(launches)
    assert (why_not is None) == served, why_not
    assert served or why_not[0] == 'offset'


def test_grids_at_the_cuda_limit():
    torch.backends.cuda.matmul.fp32_precision = 'ieee'  # fp32 with 3xTF32 dots: bwd_bc's 16-tiles
    table = {k: launch.SETTINGS[k][launch.operand_class(torch.float32)].block_l
             for k in ('bwd_x', 'bwd_bc', 'apply')}
    tile, kernel = min((table[k], k) for k in ('bwd_x', 'bwd_bc'))
    limit = launch.MAX_GRID[1] * tile                   # tokens: 1,048,560 with 16-token tiles
    assert launch.unserved(_backward_launches(*_meta_operands(1, limit, 2, 64, 64))) is None
    past = _meta_operands(1, limit + 1, 2, 64, 64)
    kind, reason = launch.unserved(_backward_launches(*past))
    assert kind == 'grid' and reason.startswith(f"{kernel}'s grid") and '65,535' in reason
    # the forward's tiles are larger: it still runs on the kernels
    assert limit + 1 <= launch.MAX_GRID[1] * table['apply']
    assert launch.unserved(_forward_launches(*past)[0]) is None


@pytest.mark.parametrize('dstate, headdim, served', [
    (64, 64, True), (48, 48, True), (16, 32, True), (65, 64, False), (64, 65, False),
    (128, 64, False)])
def test_tiles_past_the_measured_ones(dstate, headdim, served):
    for dtype in (torch.float16, torch.float32):
        operands = _meta_operands(1, 100, 2, headdim, dstate, dtype)
        for launches in (_forward_launches(*operands)[0], _backward_launches(*operands)):
            why_not = launch.unserved(launches)
            assert (why_not is None) == served, why_not
            assert served or why_not[0] == 'tile' and 'up to 64' in why_not[1]


def _routed_call(**kwargs):
    inputs = make_inputs(1, 40, 2, 16, 16, 1)
    return nc_ssd(*inputs, **kwargs), nc_ssd_reference(*inputs)


def test_auto_routes_unservable_calls_to_the_reference_one_call_at_a_time(monkeypatch):
    log = LaunchLog(monkeypatch)
    x_last = make_inputs(1, 40, 2, 16, 16, 1)[0].numel() - 1  # x's (and y's) largest offset
    monkeypatch.setattr(launch, 'MAX_OFFSET', x_last)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _routed_call()
    assert log.names == ['kv_reduce', 'apply']             # at the limit: the kernels
    monkeypatch.setattr(launch, 'MAX_OFFSET', x_last - 1)
    with pytest.warns(RuntimeWarning, match=rf'up to element {x_last:,}, past the kernels\' '
                                            r'int32 offsets .*this call runs the PyTorch '
                                            r'reference'):
        y, y_ref = _routed_call()
    assert torch.equal(y, y_ref) and log.names == ['kv_reduce', 'apply']
    with warnings.catch_warnings():
        warnings.simplefilter('error')                     # one warning per kind of reason
        _routed_call()
    monkeypatch.setattr(launch, 'MAX_OFFSET', 2**31 - 1)
    monkeypatch.setattr(launch, 'MAX_GRID', (2**31 - 1, 1, 65535))
    with pytest.warns(RuntimeWarning, match="grid .* passes CUDA's limit of 1 programs"):
        _routed_call()                                     # another kind: warned too
    monkeypatch.setattr(launch, 'MAX_GRID', (2**31 - 1, 65535, 65535))
    _routed_call()                                         # not a give-up: kernels again
    assert log.names == ['kv_reduce', 'apply'] * 2
    report = dispatch.fallbacks()
    assert report['given_up'] is None
    assert {kind: calls for kind, (calls, _) in report['routed'].items()} == dict(offset=2, grid=1)


def test_auto_routes_a_large_dstate_forward_and_backward_to_the_reference(monkeypatch):
    log = LaunchLog(monkeypatch)
    inputs = make_inputs(1, 12, 2, 8, 65, 1)
    leaves = [t.clone().requires_grad_() for t in inputs]
    with pytest.warns(RuntimeWarning, match='pad to 128 x 16 tiles') as record:
        y = nc_ssd(*leaves)
        grads = torch.autograd.grad(y, leaves, torch.ones_like(y))
    assert len(record) == 1 and log.names == []
    ref_leaves = [t.clone().requires_grad_() for t in inputs]
    y_ref = nc_ssd_reference(*ref_leaves)
    ref_grads = torch.autograd.grad(y_ref, ref_leaves, torch.ones_like(y_ref))
    for got, ref in zip((y, *grads), (y_ref, *ref_grads)):
        torch.testing.assert_close(got, ref)
    assert dispatch.fallbacks()['routed']['tile'][0] == 2


@pytest.mark.parametrize('limit', ['MAX_OFFSET', 'MAX_GRID'])
def test_explicit_triton_is_one_clear_error_before_any_launch(limit, monkeypatch):
    log = LaunchLog(monkeypatch)
    monkeypatch.setattr(launch, limit, 1 if limit == 'MAX_OFFSET' else (2**31 - 1, 1, 1))
    with pytest.raises(NCSSDKernelError) as info:
        _routed_call(backend='triton')
    message = str(info.value)
    assert message.startswith('nc_ssd: the Triton kernels cannot serve these inputs: ')
    assert 'backend="auto" runs such calls on the PyTorch reference' in message
    assert '\n' not in message and log.names == []
