"""Same weights, same numbers: VSSD against an independent functional forward written from the
release's layer-by-layer definition (classification/models/mamba2.py and mamba_util.py) and its
state-dict keys.

The oracle (``benchmarks.support.release_forward``) imports none of our layers: it reads the state
dict by the official key names and applies the official maths (stem, CPE, NC-SSD in matrix form
with the raw-z gate, standard attention, PatchMerging, out norms); the classifier's norm + mean +
head are applied here."""
import pytest
import torch
import torch.nn.functional as F

from benchmarks.support.release_forward import release_forward
from vssd_mm.models import VSSD


def _randomised(model):
    """Every parameter and BN statistic random (init values like ones/zeros hide mistakes)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                r = torch.rand(t.shape, generator=g, dtype=t.dtype)
                t.copy_(0.5 + r if 'running_var' in name or name.endswith('A_log')
                        else (r - 0.5) * (0.2 if t.dim() > 1 else 1.0))
    return model


@pytest.mark.parametrize('dtype, tol', [(torch.float64, 1e-8), (torch.float32, 2e-4)])
def test_backbone_maps_equal_the_official_forward(dtype, tol):
    model = _randomised(VSSD('micro')).eval().to(dtype)
    x = torch.randn(2, 3, 70, 90, dtype=dtype)       # not a multiple of 32
    with torch.no_grad():
        ours = model(x)
        want, _ = release_forward(model.state_dict(), x, 'micro')
    assert [tuple(o.shape) for o in ours] == [(2, 48, 18, 23), (2, 96, 9, 12), (2, 192, 5, 6),
                                               (2, 384, 3, 3)]
    for got, exp in zip(ours, want):
        scale = exp.abs().max()
        assert (got - exp).abs().max() <= tol * scale, ((got - exp).abs().max(), scale)


def test_classifier_logits_equal_the_official_forward():
    """Classification: stage-3 tokens -> final norm (our outnorm3) -> mean -> head."""
    import vssd_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    classifier = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='VSSD', arch='micro', out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=7, in_channels=384)))
    _randomised(classifier).eval().double()
    sd = classifier.state_dict()
    backbone = {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
    for i in range(3):  # the classifier has no out norms 0-2; the oracle computes them anyway
        backbone[f'outnorm{i}.weight'] = torch.ones(48 * 2**i, dtype=torch.float64)
        backbone[f'outnorm{i}.bias'] = torch.zeros(48 * 2**i, dtype=torch.float64)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        got = classifier(x, mode='tensor')
        _, tokens = release_forward(backbone, x, 'micro')
        pooled = F.layer_norm(tokens, (384, ), sd['backbone.outnorm3.weight'],
                              sd['backbone.outnorm3.bias']).mean(1)
        want = F.linear(pooled, sd['head.fc.weight'], sd['head.fc.bias'])
    torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize('dtype, tol', [(torch.float64, 1e-8), (torch.float32, 2e-4)])
def test_training_mode_maps_equal_the_official_forward(dtype, tol):
    """BatchNorm with batch statistics (the release forward as deploy_speed's training baseline);
    float32 runs the channels-last token path with autograd recording."""
    model = _randomised(VSSD('micro', drop_path_rate=0.)).train().to(dtype)
    x = torch.randn(2, 3, 64, 96, dtype=dtype)
    want, _ = release_forward(model.state_dict(), x, 'micro', training=True)
    ours = model(x)
    for got, exp in zip(ours, want):
        torch.testing.assert_close(got, exp, rtol=tol, atol=tol * exp.abs().max())
