"""One graph: VSSD through torch.compile(fullgraph=True, dynamic=True) and torch.export with
dynamic H x W, equal to eager at sizes other than the traced one; NC-SSD is one node
(vssd_mm::nc_ssd) in the graph; the eager input checks stay."""
import pytest
import torch

from vssd_mm.models import VSSD
from vssd_mm.ops import nc_ssd, nc_ssd_reference

SIZES = [(64, 96), (160, 128), (100, 70)]   # the first one is traced


def relative_error(got, expected) -> float:
    return max(((g - e).abs().max() / e.abs().max()).item() for g, e in zip(got, expected))


@pytest.fixture(scope='module')
def micro():
    torch.manual_seed(0)
    return VSSD(arch='micro', out_indices=(0, 1, 2, 3)).eval()


def test_export_with_dynamic_height_width_equals_eager(micro):
    height, width = (torch.export.Dim(n, min=64, max=2048) for n in ('height', 'width'))
    program = torch.export.export(micro, (torch.randn(1, 3, *SIZES[0]),),
                                  dynamic_shapes=({2: height, 3: width},))
    nodes = [n for n in program.graph.nodes if n.target is torch.ops.vssd_mm.nc_ssd.default]
    assert len(nodes) == sum((2, 2, 8))  # one node per NC-SSD block of stages 0-2
    exported = program.module()
    with torch.no_grad():
        for size in SIZES[1:]:
            x = torch.randn(1, 3, *size)
            assert relative_error(exported(x), micro(x)) <= 1e-4


def test_compile_fullgraph_dynamic_equals_eager_forward_and_backward():
    torch.manual_seed(0)
    model = VSSD(arch='micro', drop_path_rate=0., out_indices=(1, 3))  # deterministic
    # 'eager' backend: the graph capture (fullgraph: no break allowed) without Inductor's minutes
    # of C++ compilation on a 2-core machine; docs/benchmarks.md has Inductor's run
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend='eager')
    for size in SIZES:
        x = torch.randn(2, 3, *size)
        got = compiled(x)
        sum(o.square().mean() for o in got).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        model.zero_grad()
        expected = model(x)
        sum(o.square().mean() for o in expected).backward()
        assert relative_error(got, expected) <= 1e-4
        # all gradients as one vector: single parameters' gradients can be ~0
        flat = torch.cat([grads[n].flatten() for n, _ in model.named_parameters()])
        expected_flat = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert relative_error([flat], [expected_flat]) <= 1e-4
        model.zero_grad()


def test_custom_op_gradients_equal_the_reference():
    g = torch.Generator().manual_seed(0)
    x, dy = torch.randn(2, 30, 4, 8, generator=g), torch.randn(2, 30, 4, 8, generator=g)
    w = torch.rand(2, 30, 4, generator=g)
    B, C = torch.randn(2, 30, 2, 6, generator=g), torch.randn(2, 30, 2, 6, generator=g)
    for D in (torch.randn(4, generator=g), None):
        inputs = [t for t in (x, w, B, C, D) if t is not None]
        leaves = [t.clone().requires_grad_() for t in inputs]
        ref_leaves = [t.clone().requires_grad_() for t in inputs]
        y, state = torch.ops.vssd_mm.nc_ssd(*leaves[:4], leaves[4] if D is not None else None,
                                            'auto')
        assert state.shape == (2, 4, 6, 8) and state.dtype == torch.float32  # (batch, H, N, P)
        y_ref = nc_ssd_reference(*ref_leaves[:4], ref_leaves[4] if D is not None else None)
        torch.testing.assert_close(y, y_ref)
        grads = torch.autograd.grad(y, leaves, dy)
        ref_grads = torch.autograd.grad(y_ref, ref_leaves, dy)
        for got, expected in zip(grads, ref_grads):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.library.opcheck(torch.ops.vssd_mm.nc_ssd.default, (x, w, B, C, D, 'auto'))


def test_compiled_nc_ssd_is_one_node():
    seen = []

    def backend(graph_module, example_inputs):
        seen.extend(str(n.target) for n in graph_module.graph.nodes)
        return graph_module.forward
    x, w = torch.randn(1, 9, 2, 4), torch.rand(1, 9, 2)
    B = torch.randn(1, 9, 3)
    y = torch.compile(lambda *t: nc_ssd(*t), fullgraph=True, backend=backend)(x, w, B, B, None)
    assert 'vssd_mm.nc_ssd' in seen and not any('einsum' in s for s in seen)
    torch.testing.assert_close(y, nc_ssd_reference(x, w, B, B))


@pytest.mark.parametrize('bad, message', [
    (torch.randn(1, 4, 64, 64), r'expects images \(batch, 3, height, width\)'),
    (torch.randn(1, 3, 16, 64), 'needs height and width >= 32'),
    (torch.full((1, 3, 64, 64), float('inf')), 'non-finite input'),
])
def test_eager_checks_still_raise_with_graph_support(bad, message):
    checked = VSSD(arch='micro', check_finite=True).eval()
    torch.export.export(checked, (torch.randn(1, 3, 64, 64),))  # the value check stays eager
    with pytest.raises((ValueError, TypeError), match=message):
        checked(bad)


def test_graph_refuses_sizes_below_its_range(micro):
    height, width = (torch.export.Dim(n, min=64, max=2048) for n in ('height', 'width'))
    program = torch.export.export(micro, (torch.randn(1, 3, 64, 64),),
                                  dynamic_shapes=({2: height, 3: width},))
    with pytest.raises(Exception, match='height|width|s[0-9]+|>= 64'):
        program.module()(torch.randn(1, 3, 48, 64))
