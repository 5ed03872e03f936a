"""Same weights, same numbers: VSSD against an independent functional forward written from the
release's layer-by-layer definition (FACTS.md §2.2) and its state-dict keys (§2.4).

Nothing here imports our layers: the oracle reads the state dict by the official key names and
applies the official maths (stem, CPE, NC-SSD in matrix form with the raw-z gate, standard
attention, PatchMerging, out norms, classifier norm + mean + head)."""
import math

import pytest
import torch
import torch.nn.functional as F

from vssd_mm.models import VSSD

MICRO = dict(embed_dim=48, depths=(2, 2, 8, 4), num_heads=(2, 4, 8, 16), d_state=48)


def _bn(sd, p, x):
    return F.batch_norm(x, sd[p + 'running_mean'], sd[p + 'running_var'], sd[p + 'weight'],
                        sd[p + 'bias'], training=False, eps=1e-5)


def _conv_layer(sd, p, x, stride, padding, bn=True, relu=True):
    x = F.conv2d(x, sd[p + 'conv.weight'], sd.get(p + 'conv.bias'), stride, padding,
                 groups=1 if sd[p + 'conv.weight'].shape[1] != 1 else x.shape[1])
    if bn:
        x = _bn(sd, p + 'norm.', x)
    return F.relu(x) if relu else x


def _ln(sd, p, x):
    return F.layer_norm(x, x.shape[-1:], sd[p + 'weight'], sd[p + 'bias'], eps=1e-5)


def _dwconv_tokens(sd, p, x, hw):
    b, l, d = x.shape
    img = x.transpose(1, 2).reshape(b, d, *hw)
    return F.conv2d(img, sd[p + 'weight'], sd[p + 'bias'], 1, 1, groups=d).flatten(2).transpose(1, 2)


def _nc_ssd_attn(sd, p, u, hw, heads, d_state):
    b, l, d = u.shape
    inner = 2 * d
    zxbcdt = F.linear(u, sd[p + 'in_proj.weight'])
    z, xbc, dt = zxbcdt.split([inner, inner + 2 * d_state, heads], dim=-1)
    delta = F.softplus(dt + sd[p + 'dt_bias'])
    a = delta * torch.exp(sd[p + 'A_log'])                      # ssd_positve_dA: +delta*exp(A_log)
    img = xbc.transpose(1, 2).reshape(b, -1, *hw)
    xbc = F.silu(F.conv2d(img, sd[p + 'conv2d.weight'], sd[p + 'conv2d.bias'], 1, 1,
                          groups=img.shape[1])).flatten(2).transpose(1, 2)
    v, k, q = xbc.split([inner, d_state, d_state], dim=-1)
    v = v.reshape(b, l, heads, inner // heads)
    ys = []
    for h in range(heads):                                     # Y_h = C (B^T diag(a_h) V_h) + D_h V_h
        kv = k.transpose(1, 2) @ (a[..., h:h + 1] * v[:, :, h])
        ys.append(q @ kv + sd[p + 'D'][h] * v[:, :, h])
    y = torch.cat(ys, dim=-1)
    y = _ln(sd, p + 'norm.', y) * z                            # raw z gate, no SiLU
    return F.linear(y, sd[p + 'out_proj.weight'])


def _standard_attn(sd, p, u, heads):
    b, l, d = u.shape
    q, k, v = F.linear(u, sd[p + 'to_qkv.weight']).reshape(b, l, 3, heads, d // heads).unbind(2)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
    y = (attn @ v).transpose(1, 2).reshape(b, l, d)
    return F.linear(y, sd[p + 'to_out.weight'], sd[p + 'to_out.bias'])


def official_forward(sd, x, arch):
    """Backbone maps (B, C_i, H_i, W_i) for out_indices (0..3) and the tokens of stage 4."""
    x = _conv_layer(sd, 'patch_embed.conv1.', x, 2, 1)
    x = _conv_layer(sd, 'patch_embed.conv2.1.', _conv_layer(sd, 'patch_embed.conv2.0.', x, 1, 1),
                    1, 1, relu=False) + x
    x = _conv_layer(sd, 'patch_embed.conv3.0.', x, 2, 1)
    x = _conv_layer(sd, 'patch_embed.conv3.1.', x, 1, 0, relu=False)
    hw = tuple(x.shape[-2:])
    x = x.flatten(2).transpose(1, 2)
    maps = []
    for i, depth in enumerate(arch['depths']):
        heads = arch['num_heads'][i]
        for j in range(depth):
            p = f'layers.{i}.blocks.{j}.'
            x = x + _dwconv_tokens(sd, p + 'cpe1.', x, hw)
            n = _ln(sd, p + 'norm1.', x)
            x = x + (_nc_ssd_attn(sd, p + 'attn.', n, hw, heads, arch['d_state']) if i < 3
                     else _standard_attn(sd, p + 'attn.', n, heads))
            x = x + _dwconv_tokens(sd, p + 'cpe2.', x, hw)
            m = F.gelu(F.linear(_ln(sd, p + 'norm2.', x), sd[p + 'mlp.fc1.weight'],
                                sd[p + 'mlp.fc1.bias']))
            x = x + F.linear(m, sd[p + 'mlp.fc2.weight'], sd[p + 'mlp.fc2.bias'])
        out = _ln(sd, f'outnorm{i}.', x)
        maps.append(out.transpose(1, 2).reshape(x.shape[0], -1, *hw))
        if i < 3:
            p = f'layers.{i}.downsample.conv.'
            img = x.transpose(1, 2).reshape(x.shape[0], -1, *hw)
            img = _conv_layer(sd, p + '0.', img, 1, 0, bn=False)
            img = _conv_layer(sd, p + '1.', img, 2, 1, bn=False)
            img = _conv_layer(sd, p + '2.', img, 1, 0, relu=False)
            hw = tuple(img.shape[-2:])
            x = img.flatten(2).transpose(1, 2)
    return maps, x


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
        want, _ = official_forward(model.state_dict(), x, MICRO)
    assert [tuple(o.shape) for o in ours] == [(2, 48, 18, 23), (2, 96, 9, 12), (2, 192, 5, 6),
                                               (2, 384, 3, 3)]
    for got, exp in zip(ours, want):
        scale = exp.abs().max()
        assert (got - exp).abs().max() <= tol * scale, ((got - exp).abs().max(), scale)


def test_classifier_logits_equal_the_official_forward():
    """Classification: stage-4 tokens -> final norm (our outnorm3) -> mean -> head."""
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
        _, tokens = official_forward(backbone, x, MICRO)
        pooled = F.layer_norm(tokens, (384, ), sd['backbone.outnorm3.weight'],
                              sd['backbone.outnorm3.bias']).mean(1)
        want = F.linear(pooled, sd['head.fc.weight'], sd['head.fc.bias'])
    torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8)
