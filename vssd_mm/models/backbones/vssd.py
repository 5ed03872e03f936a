"""VSSD: Visual State Space Duality backbone (micro / tiny / small / base), one class for
mmpretrain, mmdet and mmseg.

Layout and state-dict keys equal the official release, so its checkpoints load unchanged:
``patch_embed`` (stem, stride 4) -> ``layers.0..3`` (blocks + downsample inside stages 0-2) ->
``outnorm{i}`` (LayerNorm per returned stage). Stages 0-2 mix tokens with NC-SSD, stage 3 with
global multi-head self-attention.
"""
import logging
import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...ops.nc_ssd import check_backend
from ...variants import resolve_arch
from ..checkpoints import backbone_fit_report, load_backbone_checkpoint
from ..layers import (Downsample, GlobalAttention, SimpleDownsample, SimpleStem, SSDMixer, Stem,
                      VSSDBlock)
from ..layers.layout import TokenLayout, has_forward_hooks, token_layout

MIXERS = ('nc_ssd', 'causal_ssd', 'bi_ssd', 'attention')  # the last three: the paper's ablations
MIN_INPUT_SIZE = 32


class VSSDStage(nn.Module):
    """``blocks`` at one resolution, then (stages 0-2) ``downsample`` to the next."""

    def __init__(self, blocks: Sequence[VSSDBlock], downsample: Optional[Downsample]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


def _stage_mixers(mixer: Union[str, Sequence[str]], num_stages: int) -> Tuple[str, ...]:
    """One mixer name per stage: a name for stages 0..n-2 (the last one attention), or a
    sequence of n names."""
    names = ((mixer,) * (num_stages - 1) + ('attention',) if isinstance(mixer, str)
             else tuple(mixer))
    if len(names) != num_stages or not all(isinstance(n, str) and n in MIXERS for n in names):
        raise ValueError(f'VSSD: mixer must be one of {MIXERS} or a sequence of {num_stages} of '
                         f'them (one per stage), got {mixer!r}')
    return names


def _stage_indices(out_indices: Union[int, Sequence[int]], num_stages: int) -> Tuple[int, ...]:
    """``out_indices`` as a tuple of stage numbers 0..num_stages-1 (an int is one stage, -1 the
    last); ValueError naming the accepted values otherwise."""
    given = (out_indices,) if isinstance(out_indices, int) else tuple(out_indices)
    if not given or not all(isinstance(i, int) and -num_stages <= i < num_stages for i in given):
        raise ValueError(f'VSSD: out_indices must be a stage index or a non-empty sequence of '
                         f'them, each in {tuple(range(num_stages))} (or -{num_stages}..-1 from '
                         f'the last), got {out_indices!r}')
    return tuple(i % num_stages for i in given)


@MODELS.register_module()
class VSSD(BaseModule):
    """VSSD backbone.

    Args:
        arch: 'micro', 'tiny', 'small', 'base', or a dict with embed_dim, depths, num_heads,
            d_state (and optionally expansion, ngroups, mlp_ratio, drop_path_rate).
        in_channels: image channels.
        out_indices: stages whose feature maps are returned (strides 4, 8, 16, 32; channels
            C, 2C, 4C, 8C for embed_dim C), each after its LayerNorm ``outnorm{i}``; an int for
            one stage, negative indices count from the last (as mmpretrain's backbones).
        drop_rate: dropout inside the MLPs.
        drop_path_rate: stochastic depth, linear over all blocks from 0 to this value;
            None takes the arch's value (micro/tiny 0.2, small 0.4, base 0.6).
        frozen_stages: -1 freezes nothing; k >= 0 freezes the stem and stages 0..k-1 (and their
            out norms): no gradients, kept in eval mode.
        norm_eval: keep every BatchNorm in eval mode while training (frozen statistics).
        with_cp: activation checkpointing per block (saves memory, costs a recompute).
        mixer: token mixer of stages 0-2 (the last stage keeps global attention, as released), or a
            sequence with one name per stage: 'nc_ssd' (the released models), and for the paper's
            ablations 'causal_ssd', 'bi_ssd' (needs ngroups even: ``arch=dict(..., ngroups=2)``)
            and 'attention'. Same module names and state-dict keys as the release with the
            matching flags.
        patch_embed: 'overlap' (released: 3x3 convs, stride 4 in two steps) or 'simple' (the
            ablation's 4x4/4 conv + LayerNorm; its grid is floor(H/4) x floor(W/4)).
        downsample: 'overlap' (released) or 'simple' (the ablation's 3x3/2 conv + LayerNorm).
        positive_weights: NC-SSD token weights +Δ·exp(A_log) (released models) or negative.
        nc_ssd_backend: 'auto' (Triton kernels on CUDA sm_80+, else the PyTorch reference; the
            environment variable VSSD_MM_NC_SSD_BACKEND overrides it; a kernel failure warns
            once and falls back to the reference), 'triton' (kernels or a clear error) or
            'torch' (the reference everywhere: same numbers, slower on GPU).
        check_finite: refuse inputs holding NaN or Inf with an error naming them (a debugging
            aid for a data pipeline). Off by default: it reads a value back to the host, which on
            a GPU waits for all queued work (a synchronisation per forward); graphs skip it.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH or URL, prefix=None,
            state_key=None)`` loads official VSSD checkpoints (classification ``model`` /
            ``model_ema``, detection and segmentation ``state_dict`` with ``backbone.`` keys) and
            mmengine ones (a ``tools/train.py`` file of any of the three libraries), found
            without ``state_key`` (an entry, or a sequence of entries to take the first of); a
            classifier's head and final norm are left out (``models/checkpoints/backbone.py``).
            It logs the missing / left-out keys; a checkpoint of another variant raises an
            error. mmengine's initializers (``TruncNormal``, ``Kaiming``, ``Constant``, ...)
            work too, alone or in a list with one Pretrained entry: they are applied after the
            release's own init, the checkpoint last.
        pretrained: deprecated spelling of ``init_cfg=dict(type='Pretrained', checkpoint=...)``
            that mmdet/mmseg segmentors still pass down from ``model.pretrained``.

    Inputs are (B, in_channels, H, W) with H, W >= 32, any size: stage i has ceil(H / 2^(i+2))
    rows. ``forward`` returns a tuple of (B, C_i, H_i, W_i) maps, one per out index.
    """

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3), drop_rate: float = 0.,
                 drop_path_rate: Optional[float] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False,
                 mixer: Union[str, Sequence[str]] = 'nc_ssd', patch_embed: str = 'overlap',
                 downsample: str = 'overlap',
                 positive_weights: bool = True, nc_ssd_backend: str = 'auto',
                 check_finite: bool = False, init_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None):
        init_cfg = _checked_init_cfg(init_cfg, pretrained)
        super().__init__(init_cfg=init_cfg)
        self.arch = resolve_arch(arch)
        embed_dim, depths = self.arch['embed_dim'], self.arch['depths']
        self.mixers = _stage_mixers(mixer, len(depths))
        for name, value in (('patch_embed', patch_embed), ('downsample', downsample)):
            if value not in ('overlap', 'simple'):
                raise ValueError(f"VSSD: {name} must be 'overlap' or 'simple', got {value!r}")
        self.simple_stem = patch_embed == 'simple'
        self.nc_ssd_backend = check_backend(nc_ssd_backend, 'VSSD: nc_ssd_backend')
        self.out_indices = _stage_indices(out_indices, len(depths))
        if not -1 <= frozen_stages <= len(depths):
            raise ValueError(f'VSSD: frozen_stages must be in [-1, {len(depths)}], '
                             f'got {frozen_stages}')
        self.in_channels, self.check_finite = in_channels, check_finite
        self.frozen_stages, self.norm_eval, self.with_cp = frozen_stages, norm_eval, with_cp
        self.num_features = [embed_dim * 2 ** i for i in range(len(depths))]
        if drop_path_rate is None:
            drop_path_rate = self.arch['drop_path_rate']
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()

        self.patch_embed = (SimpleStem if self.simple_stem else Stem)(in_channels, embed_dim)
        downsampling = SimpleDownsample if downsample == 'simple' else Downsample
        self.layers = nn.ModuleList()
        last = len(depths) - 1
        for i, (depth, dim, heads) in enumerate(zip(depths, self.num_features,
                                                    self.arch['num_heads'])):
            blocks = [VSSDBlock(dim, self._make_mixer(dim, heads, self.mixers[i], drop_rate,
                                                      positive_weights),
                                self.arch['mlp_ratio'], drop_rate, rates.pop(0))
                      for _ in range(depth)]
            self.layers.append(VSSDStage(blocks, downsampling(dim) if i < last else None))
        self.apply(_init_linear_and_layernorm)
        # created after the init pass, as released: PyTorch's default LayerNorm init (1, 0)
        for i in self.out_indices:
            self.add_module(f'outnorm{i}', nn.LayerNorm(self.num_features[i]))
        self._freeze_stages()

    def _make_mixer(self, dim, heads, name, drop_rate, positive_weights) -> nn.Module:
        if name == 'attention':
            return GlobalAttention(dim, heads, attn_drop=drop_rate)
        return SSDMixer(dim, heads, d_state=self.arch['d_state'],
                        expansion=self.arch['expansion'], ngroups=self.arch['ngroups'],
                        positive_weights=positive_weights, backend=self.nc_ssd_backend,
                        scan=name)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # every loader comes through here, mmengine's non-strict load_from and EMA copy too: a
        # backbone the weights do not fit is named in one line; whether that is an error is the
        # loader's call (init_cfg and our tools refuse such a file before loading it)
        report = backbone_fit_report(self, state_dict, prefix)
        if report:
            print_log(report, logger='current', level=logging.WARNING)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` on top of the release's init (done in ``__init__``): mmengine's
        initializers (TruncNormal, Kaiming, Constant, ...) first, then a Pretrained checkpoint."""
        if self.init_cfg is None:
            return
        entries = self.init_cfg if isinstance(self.init_cfg, (list, tuple)) else [self.init_cfg]
        initializers = [e for e in entries if e['type'] != 'Pretrained']
        if initializers:
            from mmengine.model import initialize
            initialize(self, initializers)
        for cfg in (e for e in entries if e['type'] == 'Pretrained'):
            load_backbone_checkpoint(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                     state_key=cfg.get('state_key'),
                                     map_location=cfg.get('map_location', 'cpu'))
        self._is_init = True

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'VSSD expects images (batch, {self.in_channels}, height, width), '
                             f'got shape {tuple(x.shape)}')
        if torch.compiler.is_compiling():
            # a bound the graph knows (value ranges) instead of a guard on the branch below
            torch._check(x.shape[2] >= MIN_INPUT_SIZE)
            torch._check(x.shape[3] >= MIN_INPUT_SIZE)
        elif min(x.shape[2:]) < MIN_INPUT_SIZE:
            raise ValueError(f'VSSD needs height and width >= {MIN_INPUT_SIZE} (stride 32), got '
                             f'{tuple(x.shape[2:])}; resize or pad the input')
        weight = next(self.patch_embed.parameters())
        if (x.dtype != weight.dtype and x.is_floating_point()
                and not torch.is_autocast_enabled(x.device.type)):
            raise TypeError(f'VSSD got a {x.dtype} input but its weights are {weight.dtype}; cast '
                            f'the input (x.to({weight.dtype})) or the model (model.to(dtype)), '
                            'or run under torch.autocast')
        # a data-dependent branch and a host read: on request, eager only (graphs trace one path)
        if (self.check_finite and not torch.compiler.is_compiling()
                and not torch.isfinite(x).all()):
            raise ValueError('VSSD got non-finite input values (NaN or Inf); check the data '
                             'pipeline and the normalisation')

    def _grid(self, size: Sequence[int], stage: int) -> Tuple[int, ...]:
        """Rows and columns of ``stage``'s maps for an input of ``size`` (H, W)."""
        first = [(s // 4) if self.simple_stem else -(-s // 4) for s in size]
        return tuple(-(-s // 2 ** stage) for s in first)

    def _run_block(self, block: VSSDBlock, x: torch.Tensor, hw: Tuple[int, int],
                   layout: TokenLayout) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return checkpoint(block, x, hw, layout, use_reentrant=False)
        return block(x, hw, layout)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self._check_input(x)
        if x.shape[0] == 0:  # an empty batch: empty maps of the right shapes, as mmdet's backbones
            return tuple(x.new_zeros(0, self.num_features[i], *self._grid(x.shape[2:], i))
                         for i in self.out_indices)
        # the CPU fast path, decided once for the whole forward
        layout = token_layout(x, observed=has_forward_hooks(self))
        x, hw = self.patch_embed(x, layout)
        outs = []
        for i, stage in enumerate(self.layers):
            for block in stage.blocks:
                x = self._run_block(block, x, hw, layout)
            if i in self.out_indices:
                out = getattr(self, f'outnorm{i}')(x)
                outs.append(out.transpose(1, 2).reshape(out.shape[0], -1, *hw).contiguous())
            if stage.downsample is not None:
                x, hw = stage.downsample(x, hw, layout)
        return tuple(outs)

    def _frozen_modules(self):
        if self.frozen_stages >= 0:
            yield self.patch_embed
        for i in range(self.frozen_stages):
            yield self.layers[i]
            if i in self.out_indices:
                yield getattr(self, f'outnorm{i}')

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


def _checked_init_cfg(init_cfg, pretrained) -> Optional[Union[dict, list]]:
    """``init_cfg`` (with the deprecated ``pretrained`` folded in), its types checked now rather
    than failing later inside ``init_weights``."""
    if pretrained is not None:
        if not isinstance(pretrained, str):
            raise TypeError('VSSD: pretrained must be a checkpoint path or URL (str) or None, '
                            f'got {type(pretrained).__name__} {pretrained!r}')
        if init_cfg is not None:
            raise ValueError('VSSD: give the checkpoint either as init_cfg or as pretrained, '
                             'not both')
        warnings.warn('VSSD: `pretrained` is deprecated, use init_cfg=dict(type='
                      '"Pretrained", checkpoint=...)', DeprecationWarning)
        return dict(type='Pretrained', checkpoint=pretrained)
    if init_cfg is None:
        return None
    entries = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    if not isinstance(init_cfg, (dict, list, tuple)) or not all(isinstance(e, dict)
                                                               for e in entries):
        raise TypeError('VSSD: init_cfg must be None, a dict or a list of dicts (e.g. '
                        'dict(type="Pretrained", checkpoint=PATH) or dict(type="TruncNormal", '
                        f'layer="Linear", std=0.02)), got {init_cfg!r}')
    for entry in entries:
        if not isinstance(entry.get('type'), str):
            raise TypeError(f'VSSD: every init_cfg entry needs a type (an mmengine initializer '
                            f'or "Pretrained"), got {entry!r}')
        if entry['type'] == 'Pretrained' and not isinstance(entry.get('checkpoint'), str):
            raise TypeError('VSSD: init_cfg of type Pretrained needs checkpoint=PATH or URL '
                            f'(str), got {entry!r}')
    if sum(e['type'] == 'Pretrained' for e in entries) > 1:
        raise ValueError(f'VSSD: init_cfg names more than one Pretrained checkpoint: {init_cfg!r}')
    return init_cfg


def _init_linear_and_layernorm(module: nn.Module) -> None:
    # the official scheme: trunc-normal(0.02, cut at +-2 absolute) linears with zero bias,
    # LayerNorm (1, 0); convolutions keep PyTorch's defaults
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=.02, a=-2., b=2.)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
