"""VSSD's token mixers: the NC-SSD backend reaches every call; the paper's ablation mixers and
Table-5 models keep the release's keys and train."""
import pytest
import torch

from vssd_mm.models import VSSD


MICRO_G2 = dict(embed_dim=48, depths=(1, 1, 2, 1), num_heads=(2, 4, 8, 16), d_state=16,
                ngroups=2)


def test_nc_ssd_backend_reaches_every_mixer_call(monkeypatch):
    # the config switch that forces the PyTorch reference (or the kernels) for the whole model
    from vssd_mm.models.layers import ssd_mixer
    seen = []
    real = ssd_mixer.nc_ssd
    monkeypatch.setattr(ssd_mixer, 'nc_ssd',
                        lambda *args, backend: seen.append(backend) or real(*args, backend=backend))
    model = VSSD(dict(embed_dim=32, depths=(1, 2, 1, 1), num_heads=(1, 2, 4, 8), d_state=16),
                 nc_ssd_backend='torch').eval()
    model(torch.randn(1, 3, 32, 32))
    assert seen == ['torch'] * 4  # stages 0-2: 1 + 2 + 1 NC-SSD blocks


@pytest.mark.parametrize('mixer', ['causal_ssd', 'bi_ssd', 'attention',
                                   ('causal_ssd', 'bi_ssd', 'nc_ssd', 'causal_ssd')])
def test_ablation_mixers_keep_the_release_keys(mixer):
    torch.manual_seed(0)
    model = VSSD(MICRO_G2, mixer=mixer).eval()
    released = VSSD(MICRO_G2)
    names = (mixer,) * 3 + ('attention',) if isinstance(mixer, str) else mixer
    for stage, name in zip(model.layers, names):
        attn = stage.blocks[0].attn
        assert type(attn).__name__ == ('GlobalAttention' if name == 'attention' else 'SSDMixer')
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
    from vssd_mm.models.layers import SSDMixer
    torch.manual_seed(0)
    mixer = SSDMixer(16, num_heads=4, d_state=8, ngroups=2, scan='causal_ssd').double()
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
