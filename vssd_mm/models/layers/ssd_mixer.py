"""The SSD token mixer of VSSD stages 0-2 (the official ``Mamba2``): non-causal (NC-SSD, the
released models, ``linear_attn_duality``) or, for the paper's ablations, causal or bidirectional
SSD over the row-major token order."""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...ops import nc_ssd
from ...ops.causal_ssd import bidirectional_ssd_reference, causal_ssd_reference
from ...ops.nc_ssd import check_backend
from .layout import DENSE, TokenLayout

SCANS = ('nc_ssd', 'causal_ssd', 'bi_ssd')


class SSDMixer(nn.Module):
    """SSD mixing of tokens (B, H*W, dim) on an H x W grid: non-causal (NC-SSD, VSSD's), or the
    ablations' causal and bidirectional scans (``scan``).

    in_proj splits into the gate z (E*dim), xBC (E*dim + 2*G*N) and dt (heads); xBC passes a
    depth-wise 3x3 conv + SiLU on the 2-D grid and splits into values x (heads x P), keys B and
    queries C (G x N each). Token weights w = softplus(dt + dt_bias) * exp(A_log) feed
    ``vssd_mm.ops.nc_ssd``; the result is LayerNorm-ed, multiplied by the raw gate z (the
    released models use no SiLU on z and a plain LayerNorm instead of Mamba2's gated RMSNorm) and
    projected back to dim.

    Args:
        dim: token channels D.
        num_heads: heads H; head dim P = expansion * dim / H.
        d_state: state size N.
        expansion: E, inner width E * dim.
        ngroups: G, groups of B/C shared by H / G heads (head h uses group h % G).
        positive_weights: w = +Δ·exp(A_log) (released models); False gives -Δ·exp(A_log), the
            pre-release sign (official ``ssd_positve_dA=False``).
        dt_min, dt_max, dt_init_floor, A_init_range: initialisation of dt_bias and A_log.
        backend: ``vssd_mm.ops.nc_ssd`` backend, 'auto' | 'triton' | 'torch'.
        scan: 'nc_ssd' (released), or the ablations 'causal_ssd' (Mamba2's causal scan with
            dt = softplus(dt + dt_bias), A = -exp(A_log), head h reading group h // (H / G)) and
            'bi_ssd' (heads and groups halved, the second half scanned in reverse; ngroups even).
            Same parameters and state-dict keys in every case.
        chunk_size: tokens per chunk of the causal scans (tiling only, the result does not
            depend on it); 256 as the release's ``ssd_chunk_size``. NC-SSD does not chunk.
    """

    def __init__(self, dim: int, num_heads: int, d_state: int = 64, expansion: int = 2,
                 ngroups: int = 1, positive_weights: bool = True, dt_min: float = 1e-3,
                 dt_max: float = 0.1, dt_init_floor: float = 1e-4,
                 A_init_range: Tuple[float, float] = (1., 16.), backend: str = 'auto',
                 scan: str = 'nc_ssd', chunk_size: int = 256):
        super().__init__()
        if scan not in SCANS:
            raise ValueError(f'SSD mixer: scan must be one of {SCANS}, got {scan!r}')
        if scan == 'bi_ssd' and (ngroups % 2 or num_heads % 2):
            raise ValueError(f'Bi-SSD splits heads and groups in halves: num_heads ({num_heads}) '
                             f'and ngroups ({ngroups}) must be even; set ngroups=2 in the arch '
                             'dict, as the release did')
        self.scan, self.chunk_size = scan, chunk_size
        self.backend = check_backend(backend, 'SSD mixer: backend')
        inner = expansion * dim
        if inner % num_heads or num_heads % ngroups:
            raise ValueError(f'NC-SSD: expansion * dim ({inner}) must divide into num_heads '
                             f'({num_heads}) heads, and num_heads into ngroups ({ngroups})')
        self.inner, self.num_heads, self.d_state, self.ngroups = inner, num_heads, d_state, ngroups
        self.headdim = inner // num_heads
        self.positive_weights = positive_weights
        conv_dim = inner + 2 * ngroups * d_state

        # dt_bias = softplus^-1(dt), dt log-uniform in [dt_min, dt_max]; A = U[A_init_range]
        dt = torch.exp(torch.rand(num_heads) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min)).clamp(min=dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(num_heads).uniform_(*A_init_range)))
        self.D = nn.Parameter(torch.ones(num_heads))
        for p in (self.dt_bias, self.A_log, self.D):
            p._no_weight_decay = True

        self.in_proj = nn.Linear(dim, 2 * inner + 2 * ngroups * d_state + num_heads, bias=False)
        self.conv2d = nn.Conv2d(conv_dim, conv_dim, 3, padding=1, groups=conv_dim, bias=True)
        self.norm = nn.LayerNorm(inner)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], layout: TokenLayout = DENSE
                ) -> torch.Tensor:
        batch, tokens, _ = x.shape
        groups_n = self.ngroups * self.d_state
        # in_proj as one linear per part: each part comes out dense (slices of one wide output
        # are strided, and the depthwise conv and the gate would copy them), and oneDNN's GEMM
        # is slower at the odd full width 2 * inner + 2 * G * N + heads than at the parts'
        z, xbc, dt = (F.linear(x, part) for part in self.in_proj.weight.split(
            [self.inner, self.inner + 2 * groups_n, self.num_heads]))
        in_place = layout.in_place
        xbc = layout.depthwise_conv(lambda m: F.silu(self.conv2d(m), in_place), xbc, hw)
        values, keys, queries = xbc.split([self.inner, groups_n, groups_n], dim=-1)
        values = values.reshape(batch, tokens, self.num_heads, self.headdim)
        keys = keys.reshape(batch, tokens, self.ngroups, self.d_state)
        queries = queries.reshape(batch, tokens, self.ngroups, self.d_state)
        delta = F.softplus(dt + self.dt_bias)
        if self.scan == 'nc_ssd':
            weights = delta * torch.exp(self.A_log.float())
            y = nc_ssd(values, weights if self.positive_weights else -weights, keys, queries,
                       self.D, backend=self.backend)
        else:
            scan = causal_ssd_reference if self.scan == 'causal_ssd' else \
                bidirectional_ssd_reference
            y = scan(values, delta, -torch.exp(self.A_log.float()), keys, queries, self.D,
                     chunk_size=self.chunk_size)
        y = self.norm(y.reshape(batch, tokens, self.inner))
        y = y.mul_(z) if in_place else y * z
        return self.out_proj(y)
