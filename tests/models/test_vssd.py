"""VSSD backbone: official layout and numbers, the OpenMMLab backbone contract, argument and input
checks."""
import re

import pytest
import torch
import torch.nn.functional as F

from vssd_mm.models import VSSD
from vssd_mm.variants import ARCH_SETTINGS


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
    # classifier = stage-3 features + final norm (= outnorm3) + linear head
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


@pytest.mark.parametrize('given, stages', [(3, (3,)), (-1, (3,)), ((0, -1), (0, 3)),
                                           ([1, 2], (1, 2))])
def test_out_indices_in_the_forms_openmmlab_backbones_accept(given, stages):
    """An int for one stage and negative indices from the last, as mmpretrain's backbones."""
    model = VSSD('micro', out_indices=given).eval()
    assert model.out_indices == stages
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [48 * 2 ** s for s in stages]


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


@pytest.mark.parametrize('x, message', [
    (torch.randn(1, 1, 64, 64), r'expects images \(batch, 3, height, width\)'),
    (torch.randn(3, 64, 64), r'expects images'),
    (torch.randn(1, 3, 16, 64), 'height and width >= 32'),
    (torch.full((1, 3, 64, 64), float('nan')), 'non-finite input'),
])
def test_bad_input_is_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        VSSD('micro', check_finite=True)(x)


def test_non_finite_input_is_checked_only_on_request():
    # the check reads a value back to the host (a GPU synchronisation per forward)
    outs = VSSD('micro', out_indices=(0,))(torch.full((1, 3, 64, 64), float('nan')))
    assert torch.isnan(outs[0]).all()


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
