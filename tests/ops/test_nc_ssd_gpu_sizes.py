"""Every NC-SSD shape VSSD-M/T/S/B launch at the paper's input sizes, Triton against the float64
reference on the GPU: forward and all five gradients. CUDA only (hours in the interpreter);
benchmarks/gpu_check.sh runs them on a lent GPU."""
import pytest
import torch

from vssd_mm.ops import nc_ssd, nc_ssd_reference
from vssd_mm.variants import ARCH_SETTINGS, nc_ssd_shapes

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='CUDA only')

# (name, H, W): classification, detection (1x / 3x test scale), segmentation and the widest
# scale of its multi-scale test (2048 x 512)
INPUT_SIZES = [('cls', 224, 224), ('det', 800, 1344), ('seg', 512, 512), ('seg_tta', 512, 2048)]
# max |triton - float64| / max |float64|: the inputs' own rounding dominates for the half types;
# fp32 without TF32 runs 3xTF32 dots (fp32 accuracy)
RTOL = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 3e-2}


def stage_inputs(shape, height, width, dtype, seed=0):
    """One image's x, w, B, C, D at an NC-SSD stage of an (height, width) input (stride 4 * 2^s)."""
    tokens = (height // 2 ** (2 + shape.stage)) * (width // 2 ** (2 + shape.stage))
    g = torch.Generator(device='cuda').manual_seed(seed)

    def randn(*size):
        return torch.randn(*size, generator=g, device='cuda')
    x = randn(1, tokens, shape.heads, shape.headdim).to(dtype)
    w = torch.rand(1, tokens, shape.heads, generator=g, device='cuda') * 0.2 + 0.01
    B = randn(1, tokens, shape.ngroups, shape.dstate).to(dtype)
    C = randn(1, tokens, shape.ngroups, shape.dstate).to(dtype)
    D = randn(shape.heads)
    return [x, w, B, C, D]


@pytest.mark.parametrize('size', INPUT_SIZES, ids=lambda s: s[0])
@pytest.mark.parametrize('arch', list(ARCH_SETTINGS))
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).split('.')[-1])
def test_triton_matches_float64_reference(size, arch, dtype):
    _, height, width = size
    for shape in nc_ssd_shapes(arch):
        inputs = stage_inputs(shape, height, width, dtype)
        leaves = [t.clone().requires_grad_() for t in inputs]
        exact = [t.double().requires_grad_() for t in inputs]   # the same rounded values
        y = nc_ssd(*leaves, backend='triton')
        y64 = nc_ssd_reference(*exact)
        dy = torch.randn(y.shape, generator=torch.Generator(device='cuda').manual_seed(1),
                         device='cuda').to(dtype)
        grads = torch.autograd.grad(y, leaves, dy)
        grads64 = torch.autograd.grad(y64, exact, dy.double())
        assert y.dtype == dtype and all(g.dtype == t.dtype for g, t in zip(grads, inputs))
        names = ['y', 'dx', 'dw', 'dB', 'dC', 'dD']
        for name, got, ref in zip(names, (y, *grads), (y64, *grads64)):
            err = ((got.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
            assert err <= RTOL[dtype], (
                f'{arch} stage {shape.stage} at {height}x{width} ({dtype}): {name} relative '
                f'error {err:.2e} > {RTOL[dtype]:.0e}')
