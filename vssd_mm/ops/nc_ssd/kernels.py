"""Fused Triton kernels of NC-SSD (see reference.py for the math).

Forward:   kv_reduce   KV[b, h] = sum_l B_l^T (w_{l,h} x_{l,h})     split over L, fp32 partials
           apply       y_l = C_l KV_h + D_h x_l                       one program per (b, h, L-tile)
Backward:  kv_reduce   dKV[b, h] = sum_l C_l^T dy_{l,h}               (same kernel, no weight)
           bwd_x       dx = w (B dKV_h) + D_h dy, dw, dD partials     one program per (b, h, L-tile)
           bwd_bc      dB = sum_h (w x) dKV_h^T, then dC = sum_h dy KV_h^T (same kernel, no
                       weight): one program per (b, group, L-tile) looping over the group's heads,
                       so the sums stay in registers (no atomics)

Computing dx, dB and dC in one kernel would read x and dy once instead of twice, but the three
(N, P) fp32 operands it keeps live spill registers at every tile size (benchmarks/check_kernels.py).

Every kernel reads x, B, C, w and dy through their strides (no ``.contiguous()`` copies; D, a
(heads,) vector, comes as a contiguous float32 copy) and computes in
float32: tiles are upcast on load and the dots run in TF32 for fp16/bf16 inputs and for fp32 inputs
when torch allows TF32 matmuls, else in 3xTF32 ('tf32x3': three TF32 dots, fp32 accuracy; IEEE fp32
FMA dots spill registers, launch.py). The op is memory-bound at VSSD's N, P <= 64, so fp32
accumulation costs no time, keeps w * x unrounded, and keeps KV (a sum over up to ~10^5 tokens) out
of fp16's range limits. N and P need not be powers of two: tiles are padded and masked.
"""
import triton
import triton.language as tl


# Scalars that vary with the input size (token count, its batch strides, split counts) and the
# group count are not specialized on: one compiled kernel serves every image size, and the
# ahead-of-time check (benchmarks/support/compile_check.py) sees every variant that can run.
@triton.jit(do_not_specialize=['L', 'G', 'TILES_PER_SPLIT', 'swb'])
def kv_reduce_kernel(
    K, V, W, OUT,
    L, H, G, N, P, TILES_PER_SPLIT,
    skb, skl, skg, skn,
    svb, svl, svh, svp,
    swb, swl, swh,
    sob, soh, sos, son, sop,
    HAS_W: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """OUT[b, h, split] = sum over the split's tokens of K_l^T (W_{l,h} V_{l,h}); (N, P) fp32."""
    pid_bh = tl.program_id(0)
    pid_split = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    g = h % G
    offs_n = tl.arange(0, BLOCK_N)
    offs_p = tl.arange(0, BLOCK_P)
    mask_n = offs_n < N
    mask_p = offs_p < P
    k_base = K + b * skb + g * skg
    v_base = V + b * svb + h * svh
    acc = tl.zeros((BLOCK_N, BLOCK_P), dtype=tl.float32)
    for i in range(TILES_PER_SPLIT):
        offs_l = (pid_split * TILES_PER_SPLIT + i) * BLOCK_L + tl.arange(0, BLOCK_L)
        mask_l = offs_l < L
        k = tl.load(k_base + offs_l[:, None] * skl + offs_n[None, :] * skn,
                    mask=mask_l[:, None] & mask_n[None, :], other=0.).to(tl.float32)
        v = tl.load(v_base + offs_l[:, None] * svl + offs_p[None, :] * svp,
                    mask=mask_l[:, None] & mask_p[None, :], other=0.).to(tl.float32)
        if HAS_W:
            w = tl.load(W + b * swb + h * swh + offs_l * swl, mask=mask_l, other=0.)
            v = v * w[:, None]
        acc += tl.dot(tl.trans(k), v, input_precision=PRECISION)
    out = OUT + b * sob + h * soh + pid_split * sos
    tl.store(out + offs_n[:, None] * son + offs_p[None, :] * sop, acc,
             mask=mask_n[:, None] & mask_p[None, :])


@triton.jit(do_not_specialize=['L', 'G'])
def apply_kernel(
    C, KV, X, D, Y,
    L, H, G, N, P,
    scb, scl, scg, scn,
    skvb, skvh, skvn, skvp,
    sxb, sxl, sxh, sxp,
    syb, syl, syh, syp,
    HAS_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Y[b, tile, h] = C[b, tile, g] @ KV[b, h] + D[h] * X[b, tile, h] (fp32 math, Y's dtype)."""
    pid_bh = tl.program_id(0)
    pid_l = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    g = h % G
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_n = tl.arange(0, BLOCK_N)
    offs_p = tl.arange(0, BLOCK_P)
    mask_l = offs_l < L
    mask_n = offs_n < N
    mask_p = offs_p < P
    c = tl.load(C + b * scb + g * scg + offs_l[:, None] * scl + offs_n[None, :] * scn,
                mask=mask_l[:, None] & mask_n[None, :], other=0.).to(tl.float32)
    kv = tl.load(KV + b * skvb + h * skvh + offs_n[:, None] * skvn + offs_p[None, :] * skvp,
                 mask=mask_n[:, None] & mask_p[None, :], other=0.)
    y = tl.dot(c, kv, input_precision=PRECISION)
    mask_lp = mask_l[:, None] & mask_p[None, :]
    if HAS_D:
        x = tl.load(X + b * sxb + h * sxh + offs_l[:, None] * sxl + offs_p[None, :] * sxp,
                    mask=mask_lp, other=0.)
        y += tl.load(D + h) * x.to(tl.float32)
    tl.store(Y + b * syb + h * syh + offs_l[:, None] * syl + offs_p[None, :] * syp,
             y.to(Y.dtype.element_ty), mask=mask_lp)


@triton.jit(do_not_specialize=['L', 'G', 'swb', 'sdwb', 'sddb', 'sddh'])
def bwd_x_kernel(
    X, W, B, D, DY, DKV, DX, DW, DD_PART,
    L, H, G, N, P,
    sxb, sxl, sxh, sxp,
    swb, swl, swh,
    sbb, sbl, sbg, sbn,
    sdyb, sdyl, sdyh, sdyp,
    skvb, skvh, skvn, skvp,
    sdxb, sdxl, sdxh, sdxp,
    sdwb, sdwl, sdwh,
    sddb, sddh, sddt,
    HAS_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """dx, dw and the dD partial of one (b, h, L-tile).

    du = B dKV_h;  dx = w du + D_h dy;  dw = <du, x>;  DD_PART[b, h, tile] = sum(dy * x).
    """
    pid_bh = tl.program_id(0)
    pid_l = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    g = h % G
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_n = tl.arange(0, BLOCK_N)
    offs_p = tl.arange(0, BLOCK_P)
    mask_l = offs_l < L
    mask_n = offs_n < N
    mask_p = offs_p < P
    mask_lp = mask_l[:, None] & mask_p[None, :]
    bk = tl.load(B + b * sbb + g * sbg + offs_l[:, None] * sbl + offs_n[None, :] * sbn,
                 mask=mask_l[:, None] & mask_n[None, :], other=0.).to(tl.float32)
    dkv = tl.load(DKV + b * skvb + h * skvh + offs_n[:, None] * skvn + offs_p[None, :] * skvp,
                  mask=mask_n[:, None] & mask_p[None, :], other=0.)
    du = tl.dot(bk, dkv, input_precision=PRECISION)                             # (L, P)
    x = tl.load(X + b * sxb + h * sxh + offs_l[:, None] * sxl + offs_p[None, :] * sxp,
                mask=mask_lp, other=0.).to(tl.float32)
    w = tl.load(W + b * swb + h * swh + offs_l * swl, mask=mask_l, other=0.)
    tl.store(DW + b * sdwb + h * sdwh + offs_l * sdwl, tl.sum(du * x, axis=1), mask=mask_l)
    dx = w[:, None] * du
    if HAS_D:
        dy = tl.load(DY + b * sdyb + h * sdyh + offs_l[:, None] * sdyl + offs_p[None, :] * sdyp,
                     mask=mask_lp, other=0.).to(tl.float32)
        dx += tl.load(D + h) * dy
        tl.store(DD_PART + b * sddb + h * sddh + pid_l * sddt, tl.sum(dy * x))
    tl.store(DX + b * sdxb + h * sdxh + offs_l[:, None] * sdxl + offs_p[None, :] * sdxp,
             dx.to(DX.dtype.element_ty), mask=mask_lp)


@triton.jit(do_not_specialize=['L', 'G', 'swb'])
def bwd_bc_kernel(
    V, W, M, OUT,
    L, H, G, N, P,
    svb, svl, svh, svp,
    swb, swl, swh,
    smb, smh, smn, smp,
    sob, sol, sog, son,
    HAS_W: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """OUT[b, tile, g] = sum over the group's heads h of (W_h V_h)[tile] M[b, h]^T, (L, N).

    dB: V = x, W = w, M = dKV;   dC: V = dy, no W, M = KV.
    """
    pid_bg = tl.program_id(0)
    pid_l = tl.program_id(1)
    b = pid_bg // G
    g = pid_bg % G
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_n = tl.arange(0, BLOCK_N)
    offs_p = tl.arange(0, BLOCK_P)
    mask_l = offs_l < L
    mask_n = offs_n < N
    mask_p = offs_p < P
    acc = tl.zeros((BLOCK_L, BLOCK_N), dtype=tl.float32)
    for i in range(H // G):
        h = i * G + g
        v = tl.load(V + b * svb + h * svh + offs_l[:, None] * svl + offs_p[None, :] * svp,
                    mask=mask_l[:, None] & mask_p[None, :], other=0.).to(tl.float32)
        if HAS_W:
            w = tl.load(W + b * swb + h * swh + offs_l * swl, mask=mask_l, other=0.)
            v = v * w[:, None]
        mt = tl.load(M + b * smb + h * smh + offs_p[:, None] * smp + offs_n[None, :] * smn,
                     mask=mask_p[:, None] & mask_n[None, :], other=0.)                 # (P, N)
        acc += tl.dot(v, mt, input_precision=PRECISION)
    tl.store(OUT + b * sob + g * sog + offs_l[:, None] * sol + offs_n[None, :] * son,
             acc.to(OUT.dtype.element_ty), mask=mask_l[:, None] & mask_n[None, :])
