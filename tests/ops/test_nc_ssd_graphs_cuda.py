"""NC-SSD in graphs on CUDA: ``torch.compile(fullgraph=True, dynamic=True)`` with Inductor and
``torch.export`` with a dynamic token count keep ``vssd_mm::nc_ssd`` as one node that runs the
Triton kernels, equal to eager at token counts other than the traced one (forward and
gradients). CUDA only; tests/deploy/test_graphs.py covers the CPU graphs of the whole model."""
import pytest
import torch
from torch import nn

from vssd_mm.ops import nc_ssd

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='CUDA only')

HEADS, HEADDIM, DSTATE = 2, 64, 64
TOKENS = (3136, 1000, 4200)   # the first one is traced
RTOL = {torch.float32: 1e-4, torch.float16: 5e-3}


class Mixer(nn.Module):
    """Projections around NC-SSD, as in a VSSD block: (batch, tokens, channels) -> same."""

    def __init__(self, channels=HEADS * HEADDIM):
        super().__init__()
        self.in_proj = nn.Linear(channels, channels + 2 * DSTATE + HEADS)
        self.out_proj = nn.Linear(channels, channels)
        self.D = nn.Parameter(torch.ones(HEADS))

    def forward(self, u):
        batch, tokens, channels = u.shape
        x, B, C, dt = self.in_proj(u).split([channels, DSTATE, DSTATE, HEADS], dim=-1)
        w = nn.functional.softplus(dt.float())
        y = nc_ssd(x.reshape(batch, tokens, HEADS, HEADDIM), w, B, C, self.D, backend='triton')
        return self.out_proj(y.reshape(batch, tokens, channels))


def relative_error(got, expected) -> float:
    return ((got.float() - expected.float()).abs().max() / expected.float().abs().max()).item()


def op_nodes(graph) -> int:
    # Dynamo's graph holds the overload packet, an exported one the resolved overload
    targets = (torch.ops.vssd_mm.nc_ssd, torch.ops.vssd_mm.nc_ssd.default)
    return sum(n.target in targets for n in graph.nodes)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16],
                         ids=lambda d: str(d).split('.')[-1])
def test_inductor_fullgraph_dynamic_equals_eager(dtype):
    from torch._inductor.compile_fx import compile_fx
    torch.manual_seed(0)
    mixer = Mixer().cuda().to(dtype)
    graphs = []

    def recording_inductor(gm, example_inputs):
        graphs.append(gm)
        return compile_fx(gm, example_inputs)
    compiled = torch.compile(mixer, backend=recording_inductor, fullgraph=True, dynamic=True)
    for tokens in TOKENS:
        u = torch.randn(2, tokens, HEADS * HEADDIM, device='cuda', dtype=dtype,
                        requires_grad=True)
        got = compiled(u)
        (got.float() ** 2).mean().backward()
        got_grads = [u.grad] + [p.grad for p in mixer.parameters()]
        u.grad = None
        mixer.zero_grad(set_to_none=True)
        expected = mixer(u)
        (expected.float() ** 2).mean().backward()
        expected_grads = [u.grad] + [p.grad for p in mixer.parameters()]
        mixer.zero_grad(set_to_none=True)
        assert relative_error(got, expected) <= RTOL[dtype], tokens
        for g, e in zip(got_grads, expected_grads):
            assert relative_error(g, e) <= RTOL[dtype], tokens
    assert len(graphs) == 1               # one graph, no recompilation for new token counts
    assert op_nodes(graphs[0].graph) == 1


def test_export_dynamic_tokens_equals_eager():
    torch.manual_seed(0)
    mixer = Mixer().cuda().eval()
    tokens = torch.export.Dim('tokens', min=64, max=2 ** 17)
    program = torch.export.export(
        mixer, (torch.randn(1, TOKENS[0], HEADS * HEADDIM, device='cuda'),),
        dynamic_shapes=({1: tokens},))
    assert op_nodes(program.graph) == 1
    exported = program.module()
    with torch.no_grad():
        for count in TOKENS[1:]:
            u = torch.randn(1, count, HEADS * HEADDIM, device='cuda')
            assert relative_error(exported(u), mixer(u)) <= RTOL[torch.float32], count
