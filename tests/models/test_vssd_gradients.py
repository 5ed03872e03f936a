"""VSSD's gradients and its CPU path: finite differences, float64 references, BatchNorm statistics,
in-place inference."""
import pytest
import torch

from vssd_mm.models import VSSD


@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('batch', [1, 2])
def test_input_gradient_equals_finite_differences(batch, training):
    # float64, the derivative along a random direction of the input: every gradient flowing back
    # through the network shows in it. Guards vssd_mm/models/layers/layout.py: on torch 2.13's
    # CPU build BatchNorm's backward is wrong at batch size 1 when the gradient arrives with the
    # tokens' strides (before the fix: 43 % off at batch size 1 in eval mode)
    torch.manual_seed(0)
    model = VSSD(arch='micro', drop_path_rate=0., out_indices=(0, 1, 2, 3)).double()
    model.train(training)
    image = torch.randn(batch, 3, 64, 96, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(batch, c, 64 // 2 ** (i + 2), 96 // 2 ** (i + 2), dtype=torch.float64)
               for i, c in enumerate((48, 96, 192, 384))]

    def loss(x):
        return sum((o * w).sum() for o, w in zip(model(x), weights))
    direction = torch.randn_like(image)
    along = (torch.autograd.grad(loss(image), image)[0] * direction).sum().item()
    with torch.no_grad():
        finite = (loss(image + 1e-7 * direction) - loss(image - 1e-7 * direction)).item() / 2e-7
    assert abs(along - finite) <= 1e-5 * abs(finite), (along, finite)


@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('batch', [1, 2])
def test_cpu_and_gpu_layout_paths_in_float32_equal_float64(monkeypatch, batch, training):
    # float32 on the CPU takes the channels-last token path (layout.token_layout); GPUs take the
    # dense maps in float32, forced here on the CPU; float64 takes the dense maps the
    # finite-difference test above checks. Both float32 paths give the float64 outputs and the
    # gradients for the input and every parameter, up to 5 % of each gradient's norm. A layout
    # fault moves all of a gradient (BatchNorm's batch-1 fault on channels-last strides: ~40 %);
    # a ReLU whose input rounds to the other side of 0 in float32 moves one token's share of it,
    # which an element-wise bound would flag. Where that happens depends on the summation order,
    # i.e. on the thread count: at 2 threads no ReLU flips here (largest error 0.27 %, the
    # downsampling's expand weight at batch 2, eval); at 1 thread one of stage 2's
    # downsampling's 36,864 expand outputs flips at batch 1, training, and moves some gradients by
    # up to 2.2 % (its BatchNorm normalises 6 tokens). The bound, 5 %, sits between the two.
    from vssd_mm.models.backbones import vssd as vssd_module
    from vssd_mm.models.layers.layout import DENSE, token_layout
    torch.manual_seed(0)
    model = VSSD(arch='micro', drop_path_rate=0., out_indices=(0, 1, 2, 3)).train(training)
    image = torch.randn(batch, 3, 64, 96)
    weights = [torch.randn(batch, c, 64 // 2 ** (i + 2), 96 // 2 ** (i + 2))
               for i, c in enumerate((48, 96, 192, 384))]

    def run(dtype):
        model.to(dtype).zero_grad()
        x = image.to(dtype, copy=True).requires_grad_()
        outs = model(x)
        sum((o * w.to(dtype)).sum() for o, w in zip(outs, weights)).backward()
        return [o.detach() for o in outs], [x.grad] + [p.grad for p in model.parameters()]
    assert token_layout(image).channels_last
    cpu_path = run(torch.float32)
    monkeypatch.setattr(vssd_module, 'token_layout', lambda x, observed=False: DENSE)
    gpu_path = run(torch.float32)
    want_outs, want_grads = run(torch.float64)
    # gradients that are zero in exact arithmetic (a conv bias before a training BatchNorm) are
    # float32 rounding noise: measured against a thousandth of the largest gradient
    floor = 1e-3 * max(w.norm() for w in want_grads)
    for outs, grads in (cpu_path, gpu_path):
        for got, want in zip(outs, want_outs):
            torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)
        for g, w in zip(grads, want_grads):
            assert (g.double() - w).norm() <= 5e-2 * max(w.norm(), floor)


def test_token_path_batchnorm_updates_the_same_running_statistics():
    # the channels-last path normalises the downsampling's (B*h*w, C, 1, 1) map: the outputs and
    # the running mean / variance it leaves equal the dense (B, C, h, w) path's (float64)
    from vssd_mm.models.layers import Downsample
    from vssd_mm.models.layers.layout import token_layout
    torch.manual_seed(0)
    fast = Downsample(48).train()
    dense = Downsample(48).train().double()
    dense.load_state_dict(fast.state_dict())
    tokens = torch.randn(2, 15 * 22, 48)
    assert token_layout(tokens).channels_last
    got, grid = fast(tokens, (15, 22), token_layout(tokens))
    want, want_grid = dense(tokens.double(), (15, 22))
    assert grid == want_grid == (8, 11) and got.is_contiguous()
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)
    for name, buffer in dense.conv[2].norm.named_buffers():
        mine = getattr(fast.conv[2].norm, name)
        torch.testing.assert_close(mine, buffer.to(mine.dtype), rtol=1e-5, atol=1e-6)


def test_inference_writes_in_place_only_without_autograd_and_keeps_the_numbers():
    # without autograd the eager CPU path writes element-wise results into fresh intermediates;
    # the maps are those of the same run with autograd recording (which writes none in place)
    from vssd_mm.models.layers import layout
    model = VSSD(arch='micro', out_indices=(0, 1, 2, 3)).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert layout.token_layout(x).in_place and not layout.token_layout(x.double()).in_place
        fast = model(x)
    recorded = model(x)
    assert recorded[0].requires_grad and not layout.token_layout(x).in_place
    for got, want in zip(fast, recorded):
        assert torch.equal(got, want)


def test_stem_hands_on_dense_tokens_on_the_cpu_path():
    # a transposed residual stream would make every LayerNorm copy and every CPE conv run NCHW
    from vssd_mm.models.layers import Stem
    from vssd_mm.models.layers.layout import token_layout
    for batch in (1, 2):
        image = torch.randn(batch, 3, 70, 90)
        tokens, hw = Stem(3, 48)(image, token_layout(image))
        assert tokens.shape == (batch, 18 * 23, 48) and hw == (18, 23) and tokens.is_contiguous()


@pytest.mark.parametrize('norm, act', [(True, False), (False, True)])
def test_conv_layer_on_tokens_is_its_forward_on_the_map(norm, act):
    """The CPU path's 1x1 layers run ConvLayer.on_tokens: the same outputs, running statistics
    and gradients as ConvLayer.forward on the (B, C, H, W) map; other convolutions refuse."""
    from vssd_mm.models.layers import ConvLayer
    from vssd_mm.models.layers.layout import map_to_tokens, tokens_to_map
    torch.manual_seed(0)
    layer = ConvLayer(8, 12, 1, norm=norm, act=act).train()
    twin = ConvLayer(8, 12, 1, norm=norm, act=act).train()
    twin.load_state_dict(layer.state_dict())
    tokens = torch.randn(2, 5 * 7, 8, requires_grad=True)
    got = layer.on_tokens(tokens)
    want = map_to_tokens(twin(tokens_to_map(tokens, (5, 7))))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.autograd.grad(got.square().sum(), tokens)[0],
                               torch.autograd.grad(want.square().sum(), tokens)[0],
                               rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(layer.buffers(), twin.buffers()):
        torch.testing.assert_close(mine, theirs)
    with pytest.raises(ValueError, match='only a 1x1, stride-1, ungrouped convolution'):
        ConvLayer(8, 8, 3, padding=1).on_tokens(tokens)
