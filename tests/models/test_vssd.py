"""VSSD backbone: official layout and numbers, OpenMMLab backbone contract, checkpoints."""
import re

import pytest
import torch
import torch.nn.functional as F

from vssd_mm.models import VSSD
from vssd_mm.variants import ARCH_SETTINGS
from vssd_mm.models.checkpoint import CheckpointMismatchError

# official classifier parameter counts (computed from the release's classification/models/mamba2.py,
# matching the comments of its configs)
CLASSIFIER_PARAMS = {'micro': 13_512_964, 'tiny': 24_270_724, 'small': 40_075_650,
                     'base': 88_823_151}
BACKBONE_PARAMS_M = {'micro': 13.13, 'tiny': 23.76, 'small': 39.56, 'base': 88.06}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('arch', list(ARCH_SETTINGS))
def test_parameter_counts_equal_the_release(arch):
    dense = VSSD(arch)
    assert round(n_params(dense) / 1e6, 2) == BACKBONE_PARAMS_M[arch]
    # classifier = stage-4 features + final norm (= outnorm3) + linear head
    cls_backbone = VSSD(arch, out_indices=(3,))
    width = cls_backbone.num_features[-1]
    assert n_params(cls_backbone) + width * 1000 + 1000 == CLASSIFIER_PARAMS[arch]


# every key pattern of the release's dense-prediction backbone (Backbone_VMAMBA2 in mamba2.py)
OFFICIAL_KEY_PATTERNS = [
    r'patch_embed\.conv1\.(conv\.weight|norm\.\w+)',
    r'patch_embed\.conv2\.[01]\.(conv\.weight|norm\.\w+)',
    r'patch_embed\.conv3\.[01]\.(conv\.weight|norm\.\w+)',
    r'layers\.\d\.blocks\.\d+\.(cpe1|cpe2)\.(weight|bias)',
    r'layers\.\d\.blocks\.\d+\.(norm1|norm2)\.(weight|bias)',
    r'layers\.\d\.blocks\.\d+\.attn\.(dt_bias|A_log|D|in_proj\.weight|conv2d\.(weight|bias)|'
    r'norm\.(weight|bias)|out_proj\.weight)',
    r'layers\.3\.blocks\.\d+\.attn\.(to_qkv\.weight|to_out\.(weight|bias))',
    r'layers\.\d\.blocks\.\d+\.mlp\.(fc1|fc2)\.(weight|bias)',
    r'layers\.[012]\.downsample\.conv\.[012]\.conv\.(weight|bias)',
    r'layers\.[012]\.downsample\.conv\.2\.norm\.\w+',
    r'outnorm[0-3]\.(weight|bias)',
]


def test_state_dict_keys_and_shapes_are_the_official_ones():
    sd = VSSD('tiny').state_dict()
    unmatched = [k for k in sd if not any(re.fullmatch(p, k) for p in OFFICIAL_KEY_PATTERNS)]
    assert not unmatched
    expected_shapes = {  # tiny: C=64, N=64, E=2, heads 2/4/8/16
        'patch_embed.conv1.conv.weight': (32, 3, 3, 3),
        'patch_embed.conv3.0.conv.weight': (256, 32, 3, 3),
        'patch_embed.conv3.1.conv.weight': (64, 256, 1, 1),
        'layers.0.blocks.0.attn.in_proj.weight': (386, 64),
        'layers.1.blocks.0.attn.in_proj.weight': (644, 128),
        'layers.2.blocks.7.attn.in_proj.weight': (1160, 256),
        'layers.0.blocks.0.attn.conv2d.weight': (256, 1, 3, 3),
        'layers.2.blocks.0.attn.conv2d.bias': (640,),
        'layers.0.blocks.1.attn.A_log': (2,),
        'layers.2.blocks.0.attn.dt_bias': (8,),
        'layers.0.blocks.0.attn.norm.weight': (128,),
        'layers.0.blocks.0.attn.out_proj.weight': (64, 128),
        'layers.3.blocks.3.attn.to_qkv.weight': (1536, 512),
        'layers.3.blocks.0.attn.to_out.bias': (512,),
        'layers.0.blocks.0.cpe1.weight': (64, 1, 3, 3),
        'layers.1.blocks.3.mlp.fc1.weight': (512, 128),
        'layers.0.downsample.conv.0.conv.weight': (512, 64, 1, 1),
        'layers.0.downsample.conv.1.conv.weight': (512, 1, 3, 3),
        'layers.2.downsample.conv.2.conv.weight': (512, 2048, 1, 1),
        'layers.0.downsample.conv.2.norm.running_var': (128,),
        'outnorm3.weight': (512,),
    }
    for key, shape in expected_shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert 'layers.3.downsample.conv.0.conv.weight' not in sd


def test_official_initialisation():
    torch.manual_seed(0)
    model = VSSD('micro')
    mixer = model.layers[0].blocks[0].attn
    dt = F.softplus(torch.cat([b.attn.dt_bias for s in model.layers[:3] for b in s.blocks]))
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    A = torch.cat([b.attn.A_log for s in model.layers[:3] for b in s.blocks]).exp()
    assert A.min() >= 1 and A.max() <= 16
    assert torch.equal(mixer.D, torch.ones_like(mixer.D))
    w = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Linear)])
    assert abs(w.std().item() - 0.02) < 0.002 and w.abs().max() < 0.2  # not kaiming
    assert all(m.bias is None or not m.bias.any()
               for m in model.modules() if isinstance(m, torch.nn.Linear))


@pytest.mark.parametrize('hw', [(224, 224), (97, 131), (32, 32), (512, 683)])
def test_output_shapes_and_strides(hw):
    model = VSSD('micro').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    ceil = lambda v, s: -(-v // s)  # noqa: E731
    assert [tuple(o.shape) for o in outs] == [
        (1, 48 * 2 ** i, ceil(hw[0], 4 * 2 ** i), ceil(hw[1], 4 * 2 ** i)) for i in range(4)]
    assert all(o.is_contiguous() for o in outs)


def test_out_indices_subset():
    outs = VSSD('micro', out_indices=(1, 3)).eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [96, 384]


def test_nc_ssd_mixer_equals_the_official_matrix_form():
    # the release computes, per head, Y = C (B^T diag(a) V) + D V with a = dt * exp(A_log) and
    # then LN(Y) * z; here in its own (batch, heads, L, P) layout with explicit matmuls
    torch.manual_seed(0)
    mixer = VSSD('micro').layers[1].blocks[0].attn
    x, hw = torch.randn(2, 6 * 5, 96), (6, 5)
    with torch.no_grad():
        zxbcdt = mixer.in_proj(x)
        inner, n, heads = mixer.inner, mixer.d_state, mixer.num_heads
        z, xbc, dt = torch.split(zxbcdt, [inner, inner + 2 * n, heads], dim=-1)
        dt = F.softplus(dt + mixer.dt_bias)
        img = xbc.view(2, *hw, -1).permute(0, 3, 1, 2)
        xbc = F.silu(mixer.conv2d(img)).permute(0, 2, 3, 1).reshape(2, 30, -1)
        v, k, q = torch.split(xbc, [inner, n, n], dim=-1)
        V = v.view(2, 30, heads, -1).permute(0, 2, 1, 3)
        dA = -(dt.permute(0, 2, 1)[..., None] * -torch.exp(mixer.A_log.float()).view(1, -1, 1, 1))
        KV = k.view(2, 1, 30, n).transpose(-1, -2) @ (V * dA)
        Y = q.view(2, 1, 30, n) @ KV + V * mixer.D.view(1, -1, 1, 1)
        Y = Y.permute(0, 2, 1, 3).reshape(2, 30, -1)
        expected = mixer.out_proj(mixer.norm(Y) * z)
        torch.testing.assert_close(mixer(x, hw), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('registry_module', ['mmdet.registry', 'mmseg.registry',
                                             'mmpretrain.registry'])
def test_one_registration_serves_every_library(registry_module):
    import importlib
    import vssd_mm  # noqa: F401
    registry = importlib.import_module(registry_module).MODELS
    model = registry.build(dict(type='VSSD', arch='micro', out_indices=(2,)))
    assert type(model) is VSSD


def test_custom_imports_in_a_config_is_enough(tmp_path):
    import subprocess
    import sys
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']\n"
                   "custom_imports = dict(imports=['vssd_mm'], allow_failed_imports=False)\n"
                   "model = dict(backbone=dict(_delete_=True, type='VSSD', arch='micro'),\n"
                   "             neck=dict(in_channels=[48, 96, 192, 384]))\n")
    code = ("import sys; from mmengine.config import Config; from mmdet.registry import MODELS;"
            "from mmdet.utils import register_all_modules; register_all_modules();"
            "from mmengine.utils import import_modules_from_strings as imp;"
            f"cfg = Config.fromfile({str(cfg)!r}); imp(**cfg.custom_imports);"
            "m = MODELS.build(cfg.model); print(type(m.backbone).__module__)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('vssd_mm.models.backbones.vssd')


def test_frozen_stages_get_no_gradient_and_stay_in_eval():
    model = VSSD('micro', frozen_stages=1)
    model.train()
    frozen = [model.patch_embed, model.layers[0], model.outnorm0]
    assert all(not m.training for f in frozen for m in f.modules())
    assert model.layers[1].training
    sum(o.sum() for o in model(torch.randn(2, 3, 64, 64))).backward()
    assert all(p.grad is None for f in frozen for p in f.parameters())
    assert all(p.grad is not None for p in model.layers[1].parameters())


def test_norm_eval_keeps_batchnorm_statistics():
    model = VSSD('micro', norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(bn.training for bn in bns)
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.randn(2, 3, 64, 64))
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bns))


def test_with_cp_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = VSSD('micro', drop_path_rate=0.)
    ckpt = VSSD('micro', drop_path_rate=0., with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    grads = []
    for model in (plain, ckpt):
        model.train()
        model.zero_grad()
        outs = model(x)
        sum((o * o).mean() for o in outs).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        grads[-1]['_out'] = torch.cat([o.flatten() for o in outs]).detach()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-6,
                                   msg=name)


def _official_classification_state(model: VSSD, num_classes=1000):
    """A state dict in the official classifier layout: no outnorms, final norm + head."""
    sd = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith('outnorm')}
    width = model.num_features[-1]
    sd.update({'norm.weight': torch.ones(width), 'norm.bias': torch.zeros(width),
               'head.weight': torch.zeros(num_classes, width), 'head.bias': torch.zeros(num_classes)})
    return sd


def test_official_classification_checkpoint_loads(tmp_path):
    torch.manual_seed(0)
    source = VSSD('micro')
    path = tmp_path / 'vssd_micro_best.pth'
    torch.save({'model': _official_classification_state(source), 'epoch': 299}, path)
    target = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    target.init_weights()
    got, want = target.state_dict(), source.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want if not k.startswith('outnorm'))


def test_model_ema_entry_and_detection_layout(tmp_path):
    torch.manual_seed(0)
    source = VSSD('micro')
    path = tmp_path / 'official.pth'
    ema = {k: v + 1 if v.is_floating_point() else v
           for k, v in _official_classification_state(source).items()}
    torch.save({'model': _official_classification_state(source), 'model_ema': ema}, path)
    target = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                         state_key='model_ema'))
    target.init_weights()
    key = 'layers.0.blocks.0.attn.A_log'
    torch.testing.assert_close(target.state_dict()[key], source.state_dict()[key] + 1)

    # mmdet / mmseg layout: {'state_dict': {'backbone.*', 'neck.*', ...}}, outnorms included
    det = tmp_path / 'mask_rcnn.pth'
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in source.state_dict().items()},
                               'neck.lateral_convs.0.conv.weight': torch.zeros(1)}}, det)
    target = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=str(det)))
    target.init_weights()
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_checkpoint_of_another_variant_is_an_error(tmp_path):
    path = tmp_path / 'micro.pth'
    torch.save({'model': _official_classification_state(VSSD('micro'))}, path)
    model = VSSD('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError, match=r'checkpoint has VSSD-Micro \(embed_dim 48, '
                       r'depths \(2, 2, 8, 4\).*model has VSSD-Tiny \(embed_dim 64, depths '
                       r'\(2, 4, 8, 4\)'):
        model.init_weights()


def test_missing_file_and_the_deprecated_pretrained_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match='VSSD checkpoint not found: .*nope.pth'):
        VSSD('micro', init_cfg=dict(type='Pretrained',
                                    checkpoint=str(tmp_path / 'nope.pth'))).init_weights()
    torch.manual_seed(0)
    source = VSSD('micro')
    path = tmp_path / 'vssd_micro_best.pth'
    torch.save({'model': _official_classification_state(source)}, path)
    with pytest.warns(DeprecationWarning, match='pretrained` is deprecated'):
        target = VSSD('micro', pretrained=str(path))  # what mmseg's EncoderDecoder passes down
    target.init_weights()
    key = 'layers.2.blocks.1.attn.in_proj.weight'
    assert torch.equal(target.state_dict()[key], source.state_dict()[key])
    with pytest.raises(ValueError, match='either as init_cfg or as pretrained'):
        VSSD('micro', pretrained=str(path), init_cfg=dict(type='Pretrained', checkpoint='x'))


@pytest.mark.parametrize('x, message', [
    (torch.randn(1, 1, 64, 64), r'expects images \(batch, 3, height, width\)'),
    (torch.randn(3, 64, 64), r'expects images'),
    (torch.randn(1, 3, 16, 64), 'height and width >= 32'),
    (torch.full((1, 3, 64, 64), float('nan')), 'non-finite input'),
])
def test_bad_input_is_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        VSSD('micro')(x)


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='huge'), "unknown arch 'huge'"),
    (dict(arch=dict(embed_dim=32)), 'a custom arch needs'),
    (dict(mixer='mamba'), 'mixer must be one of'),
    (dict(out_indices=(4,)), 'out_indices must be'),
    (dict(nc_ssd_backend='cuda'), r"nc_ssd_backend must be one of \('auto', 'triton', 'torch'\), "
                                  "got 'cuda'"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VSSD(**kwargs)


def test_nc_ssd_backend_reaches_every_mixer_call(monkeypatch):
    # the config switch that forces the PyTorch reference (or the kernels) for the whole model
    from vssd_mm.models.layers import nc_ssd_mixer
    seen = []
    real = nc_ssd_mixer.nc_ssd
    monkeypatch.setattr(nc_ssd_mixer, 'nc_ssd',
                        lambda *args, backend: seen.append(backend) or real(*args, backend=backend))
    model = VSSD(dict(embed_dim=32, depths=(1, 2, 1, 1), num_heads=(1, 2, 4, 8), d_state=16),
                 nc_ssd_backend='torch').eval()
    model(torch.randn(1, 3, 32, 32))
    assert seen == ['torch'] * 4  # stages 0-2: 1 + 2 + 1 NC-SSD blocks


MICRO_G2 = dict(embed_dim=48, depths=(1, 1, 2, 1), num_heads=(2, 4, 8, 16), d_state=16,
                ngroups=2)


@pytest.mark.parametrize('mixer', ['causal_ssd', 'bi_ssd', 'attention',
                                   ('causal_ssd', 'bi_ssd', 'nc_ssd', 'causal_ssd')])
def test_ablation_mixers_keep_the_release_keys(mixer):
    torch.manual_seed(0)
    model = VSSD(MICRO_G2, mixer=mixer).eval()
    released = VSSD(MICRO_G2)
    names = (mixer,) * 3 + ('attention',) if isinstance(mixer, str) else mixer
    for stage, name in zip(model.layers, names):
        attn = stage.blocks[0].attn
        assert type(attn).__name__ == ('GlobalAttention' if name == 'attention' else 'NCSSDMixer')
        assert name == 'attention' or attn.scan == name
    own = {k: v.shape for k, v in model.state_dict().items()}
    # the same keys as the released model wherever the stage's mixer family is the same
    for key, shape in ((k, v.shape) for k, v in released.state_dict().items()):
        stage = int(key.split('.')[1]) if key.startswith('layers.') and '.attn.' in key else None
        if stage is None or (names[stage] == 'attention') == (stage == 3):
            assert own.get(key) == shape, key
    out = model(torch.randn(2, 3, 64, 96))
    assert [o.shape for o in out] == [(2, 48 * 2 ** i, 16 // 2 ** i, 24 // 2 ** i)
                                      for i in range(4)]


def test_causal_mixer_is_the_recurrence_of_its_weights():
    from vssd_mm.models.layers import NCSSDMixer
    torch.manual_seed(0)
    mixer = NCSSDMixer(16, num_heads=4, d_state=8, ngroups=2, scan='causal_ssd').double()
    x, hw = torch.randn(1, 12, 16, dtype=torch.float64), (3, 4)
    z, xbc, dt = mixer.in_proj(x).split([32, 32 + 32, 4], dim=-1)
    img = xbc.transpose(1, 2).reshape(1, -1, *hw)
    xbc = torch.nn.functional.silu(mixer.conv2d(img)).flatten(2).transpose(1, 2)
    v, B, C = xbc.split([32, 16, 16], dim=-1)
    v, B, C = v.reshape(12, 4, 8), B.reshape(12, 2, 8), C.reshape(12, 2, 8)
    delta = torch.nn.functional.softplus(dt[0] + mixer.dt_bias)           # (12, 4)
    A = -torch.exp(mixer.A_log)
    ys, state = [], torch.zeros(4, 8, 8, dtype=torch.float64)
    for t in range(12):                       # head h reads group h // 2 on the causal path
        for h in range(4):
            g = h // 2
            state[h] = torch.exp(delta[t, h] * A[h]) * state[h] + delta[t, h] * torch.outer(
                B[t, g], v[t, h])
        ys.append(torch.stack([C[t, h // 2] @ state[h] + mixer.D[h] * v[t, h]
                               for h in range(4)]))
    y = mixer.norm(torch.stack(ys).reshape(1, 12, 32)) * z
    torch.testing.assert_close(mixer(x, hw), mixer.out_proj(y))


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='micro', mixer='bi_ssd'), r'ngroups \(1\) must be even; set ngroups=2'),
    (dict(arch='micro', mixer='mamba'), 'mixer must be one of'),
    (dict(arch='micro', mixer=('nc_ssd', 'nc_ssd')), 'a sequence of 4 of them'),
])
def test_bad_mixer_choices_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VSSD(**kwargs)


def test_custom_arch_dict():
    model = VSSD(dict(embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), d_state=16))
    assert [o.shape[1] for o in model.eval()(torch.randn(1, 3, 32, 32))] == [32, 64, 128, 256]


@pytest.mark.parametrize('hw', [(64, 64), (70, 45)])
def test_empty_batch_gives_empty_maps_of_the_full_batch_shapes(hw):
    model = VSSD('micro').eval()
    full = model(torch.randn(1, 3, *hw))
    empty = model(torch.randn(0, 3, *hw))
    assert [o.shape[1:] for o in empty] == [o.shape[1:] for o in full]
    assert all(o.shape[0] == 0 for o in empty)


def test_half_input_to_a_float_model_is_named_and_autocast_works():
    model = VSSD('micro').eval()
    with pytest.raises(TypeError, match=r'VSSD got a torch.float16 input but its weights are '
                                        r'torch.float32; cast the input'):
        model(torch.randn(1, 3, 64, 64).half())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(torch.randn(1, 3, 64, 64).bfloat16())
    assert out[0].dtype == torch.bfloat16


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(pretrained=3), TypeError, 'pretrained must be a checkpoint path or URL'),
    (dict(init_cfg='vssd_micro_best.pth'), TypeError, 'init_cfg must be None, a dict or a list'),
    (dict(init_cfg=[dict(type='Pretrained')]), TypeError, 'Pretrained needs checkpoint=PATH'),
    (dict(init_cfg=dict(checkpoint='x.pth')), TypeError, 'every init_cfg entry needs a type'),
    (dict(init_cfg=[dict(type='Pretrained', checkpoint='a'),
                    dict(type='Pretrained', checkpoint='b')]), ValueError, 'more than one'),
])
def test_init_arguments_are_checked_when_the_model_is_built(kwargs, error, message):
    with pytest.raises(error, match=message):
        VSSD('micro', **kwargs)


def test_mmengine_initializers_apply_after_the_release_init():
    torch.manual_seed(0)
    plain = VSSD('micro')
    torch.manual_seed(0)
    model = VSSD('micro', init_cfg=dict(type='Constant', layer='Linear', val=0.5, bias=0.))
    model.init_weights()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            assert torch.all(module.weight == 0.5), name
    # what the initializer does not touch keeps the release's init (A_log, D, convolutions)
    reference = plain.state_dict()
    for key, value in model.state_dict().items():
        if key.endswith(('A_log', '.D', 'conv2d.weight')):
            assert torch.equal(value, reference[key]), key


def test_initializers_in_a_list_with_pretrained_load_the_checkpoint_last(tmp_path):
    source = VSSD('micro')
    path = tmp_path / 'vssd_micro_best.pth'
    torch.save({'model': _official_classification_state(source)}, path)
    model = VSSD('micro', init_cfg=[dict(type='Constant', layer='Linear', val=0.5),
                                    dict(type='Pretrained', checkpoint=str(path))])
    model.init_weights()
    for key, value in source.state_dict().items():
        if not key.startswith('outnorm'):
            assert torch.equal(model.state_dict()[key], value), key


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


# the paper's Table 5 on VSSD-Micro (the ablation flags of the release's mamba2.py), ngroups 2 as
# the release's Bi-SSD runs; the last row is the released architecture
TABLE5 = [dict(mixer=('causal_ssd',) * 4, patch_embed='simple', downsample='simple'),
          dict(mixer=('bi_ssd',) * 4, patch_embed='simple', downsample='simple'),
          dict(mixer=('nc_ssd',) * 4, patch_embed='simple', downsample='simple'),
          dict(mixer='nc_ssd', patch_embed='simple', downsample='simple'),
          dict(mixer='nc_ssd')]


@pytest.mark.parametrize('row', range(len(TABLE5)))
def test_table5_models_build_and_train_a_step(row):
    torch.manual_seed(0)
    model = VSSD(dict(MICRO_G2, depths=(1, 1, 1, 1)), out_indices=(3,), **TABLE5[row]).train()
    out = model(torch.randn(2, 3, 70, 100))[0]
    assert out.shape == (2, 384, 3, 4)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_simple_stem_and_downsample_keys_and_grids():
    model = VSSD(dict(MICRO_G2, depths=(1, 1, 1, 1)), patch_embed='simple', downsample='simple')
    keys = {k: tuple(v.shape) for k, v in model.state_dict().items()
            if k.startswith('patch_embed') or '.downsample.' in k}
    assert keys['patch_embed.conv1.conv.weight'] == (48, 3, 4, 4)
    assert 'patch_embed.conv1.conv.bias' not in keys and 'patch_embed.norm.weight' in keys
    assert 'patch_embed.conv1.norm.running_mean' in keys
    assert keys['layers.0.downsample.conv.0.conv.weight'] == (96, 48, 3, 3)
    assert keys['layers.0.downsample.conv.0.conv.bias'] == (96,)
    assert keys['layers.0.downsample.norm.weight'] == (96,)
    assert not any('downsample.conv.1' in k or 'downsample.conv.0.norm' in k for k in keys)
    maps = model.eval()(torch.randn(1, 3, 70, 100))
    assert [m.shape[2:] for m in maps] == [(17, 25), (9, 13), (5, 7), (3, 4)]
    assert [m.shape[2:] for m in model(torch.zeros(0, 3, 70, 100))] == [m.shape[2:] for m in maps]


@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('batch', [1, 2])
def test_channels_last_cpu_path_gradients_equal_float64(batch, training):
    # float32 on the CPU takes the channels-last token path (layout.channels_last_tokens), float64
    # the dense maps the finite-difference test above checks: the same gradients for the input
    # and every parameter, up to 1 % of each gradient's norm. A layout fault moves all of a
    # gradient (BatchNorm's batch-1 fault on channels-last strides: ~40 %); a ReLU whose input
    # rounds to the other side of 0 in float32 moves one token's share of it (measured: 0.27 % of
    # the downsampling's expand weight at batch 2, eval), which an element-wise bound would flag
    torch.manual_seed(0)
    model = VSSD(arch='micro', drop_path_rate=0., out_indices=(0, 1, 2, 3)).train(training)
    image = torch.randn(batch, 3, 64, 96)
    weights = [torch.randn(batch, c, 64 // 2 ** (i + 2), 96 // 2 ** (i + 2))
               for i, c in enumerate((48, 96, 192, 384))]

    def gradients(dtype):
        model.to(dtype).zero_grad()
        x = image.to(dtype, copy=True).requires_grad_()
        sum((o * w.to(dtype)).sum() for o, w in zip(model(x), weights)).backward()
        return [x.grad] + [p.grad for p in model.parameters()]
    got, want = gradients(torch.float32), gradients(torch.float64)
    # gradients that are zero in exact arithmetic (a conv bias before a training BatchNorm) are
    # float32 rounding noise: measured against a thousandth of the largest gradient
    floor = 1e-3 * max(w.norm() for w in want)
    for g, w in zip(got, want):
        assert (g.double() - w).norm() <= 1e-2 * max(w.norm(), floor)


def test_token_path_batchnorm_updates_the_same_running_statistics():
    # the channels-last path normalises the downsampling's (B*h*w, C, 1, 1) map: the outputs and
    # the running mean / variance it leaves equal the dense (B, C, h, w) path's (float64)
    from vssd_mm.models.layers import Downsample
    torch.manual_seed(0)
    fast = Downsample(48).train()
    dense = Downsample(48).train().double()
    dense.load_state_dict(fast.state_dict())
    tokens = torch.randn(2, 15 * 22, 48)
    got, grid = fast(tokens, (15, 22))
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
        assert layout.overwrite_in_place(x) and not layout.overwrite_in_place(x.double())
        fast = model(x)
    recorded = model(x)
    assert recorded[0].requires_grad and not layout.overwrite_in_place(recorded[0])
    for got, want in zip(fast, recorded):
        assert torch.equal(got, want)


def test_stem_hands_on_dense_tokens_on_the_cpu_path():
    # a transposed residual stream would make every LayerNorm copy and every CPE conv run NCHW
    from vssd_mm.models.layers import Stem
    for batch in (1, 2):
        tokens, hw = Stem(3, 48)(torch.randn(batch, 3, 70, 90))
        assert tokens.shape == (batch, 18 * 23, 48) and hw == (18, 23) and tokens.is_contiguous()
