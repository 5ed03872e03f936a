"""The VSSD variant table, importable without torch or mm* packages.

The backbone (``models/backbones/vssd.py``) builds from it, and the kernels' ahead-of-time check
(``ops/nc_ssd/compile_check.py``) reads the NC-SSD shapes every variant launches from it, so the
two cannot disagree.
"""
import copy
from typing import Dict, List, NamedTuple, Union

# drop_path_rate is the one the released models trained with (micro's yaml said 0.1, but the
# official builder read a different key and used its default 0.2).
ARCH_SETTINGS: Dict[str, dict] = {
    'micro': dict(embed_dim=48, depths=(2, 2, 8, 4), num_heads=(2, 4, 8, 16), d_state=48,
                  drop_path_rate=0.2),
    'tiny': dict(embed_dim=64, depths=(2, 4, 8, 4), num_heads=(2, 4, 8, 16), d_state=64,
                 drop_path_rate=0.2),
    'small': dict(embed_dim=64, depths=(3, 4, 21, 5), num_heads=(2, 4, 8, 16), d_state=64,
                  drop_path_rate=0.4),
    'base': dict(embed_dim=96, depths=(3, 4, 21, 5), num_heads=(3, 6, 12, 24), d_state=64,
                 drop_path_rate=0.6),
}
ARCH_DEFAULTS = dict(expansion=2, ngroups=1, mlp_ratio=4.0, drop_path_rate=0.2)
NC_SSD_STAGES = 3  # stages 0-2 mix with NC-SSD, the last one with attention


def resolve_arch(arch: Union[str, dict]) -> dict:
    """The full setting dict of a named variant or of a custom ``arch`` dict."""
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise ValueError(f'VSSD: unknown arch {arch!r}; choose one of '
                             f'{sorted(ARCH_SETTINGS)} or pass a dict')
        return {**ARCH_DEFAULTS, **ARCH_SETTINGS[arch]}
    required = {'embed_dim', 'depths', 'num_heads', 'd_state'}
    missing = required - set(arch)
    unknown = set(arch) - required - set(ARCH_DEFAULTS)
    if missing or unknown:
        raise ValueError(f'VSSD: a custom arch needs {sorted(required)} (optional: '
                         f'{sorted(ARCH_DEFAULTS)}); missing {sorted(missing)}, unknown '
                         f'{sorted(unknown)}')
    if len(arch['depths']) != len(arch['num_heads']):
        raise ValueError('VSSD: depths and num_heads need one entry per stage')
    return {**ARCH_DEFAULTS, **copy.deepcopy(arch)}


class NCSSDShape(NamedTuple):
    """What one NC-SSD stage hands to ``nc_ssd``: x is (batch, L, heads, headdim), B and C are
    (batch, L, ngroups, dstate), all three slices of one (batch, L, channels) activation."""
    stage: int
    heads: int
    headdim: int
    dstate: int
    ngroups: int
    channels: int  # expansion * dim + 2 * ngroups * dstate: the row stride of x, B and C


def nc_ssd_shapes(arch: Union[str, dict]) -> List[NCSSDShape]:
    """The NC-SSD operand shapes of each NC-SSD stage of a variant."""
    settings = resolve_arch(arch)
    shapes = []
    for stage in range(min(NC_SSD_STAGES, len(settings['depths']))):
        inner = settings['expansion'] * settings['embed_dim'] * 2 ** stage
        heads = settings['num_heads'][stage]
        groups, dstate = settings['ngroups'], settings['d_state']
        shapes.append(NCSSDShape(stage, heads, inner // heads, dstate, groups,
                                 inner + 2 * groups * dstate))
    return shapes
