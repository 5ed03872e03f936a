"""Ahead-of-time check of the Triton NC-SSD kernels for NVIDIA GPUs, on a machine without one.

Every launch the dispatcher makes for VSSD's NC-SSD shapes (all variants and stages, fp16 / bf16 /
fp32 with 3xTF32 or TF32 dots, with and without D, forward and backward) is built by the same
functions that run it (launch.py), on 'meta' tensors laid out as the model lays them out. Triton's
own binder turns each launch into its compile-time specialization (argument types, divisibility,
constants, num_warps, num_stages); each distinct one is compiled for every requested architecture
(``triton.compile`` with a ``GPUTarget``, no driver needed) and its PTX is assembled with Triton's
``ptxas -v``, whose report gives registers, spills and stack. Shared memory is Triton's own
allocation (the kernels use no static shared memory).

A row fails on a compile error, any spill, shared memory above the per-block limit of the
smallest supported architecture (one set of launch settings serves all), or fewer than two
resident blocks and eight warps per SM.
"""
import os
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch

from vssd_mm.variants import ARCH_SETTINGS, nc_ssd_shapes

from .kernel_report import ARCHES, GPUArch, KernelReport, parse_ptxas_log, resident_blocks

DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16, 'fp32': torch.float32}
# token counts of the sites: 56 x 56 (VSSD's stage 0 at 224^2) and an odd count, to show that
# specializations do not depend on L
TOKENS = (3136, 1001)
BATCH = 2
# The check drives Triton's compiler internals (the JIT binder, ASTSource): tested with these.
TESTED_TRITON = ('3.7.',)


def toolchain_problem() -> Optional[str]:
    """Why the check cannot run here (no Triton, no NVIDIA backend, no ptxas), or None."""
    try:
        import triton
        from triton.backends import backends
    except ImportError as err:
        return f'triton is not importable ({err})'
    if 'nvidia' not in backends:
        return "Triton's NVIDIA backend is not installed"
    if not triton.__version__.startswith(TESTED_TRITON):
        return (f'the check drives Triton {"/".join(v.rstrip(".") for v in TESTED_TRITON)} '
                f'compiler internals; this is Triton {triton.__version__} (install the pinned '
                'stack: make install)')
    from triton.backends.nvidia.compiler import get_ptxas
    try:
        path = get_ptxas(90).path
    except Exception as err:  # the knob raises when the binary is missing
        return f'ptxas not found ({err})'
    if not path or not os.access(path, os.X_OK):
        return f'ptxas not found (looked for {path!r})'
    return None


def kernel_names() -> List[str]:
    """The kernels the dispatcher launches (empty where Triton is not importable)."""
    try:
        from vssd_mm.ops.nc_ssd.launch import SETTINGS
    except ImportError:
        return []
    return list(SETTINGS)


# ------------------------------------------------------------------ the launches VSSD makes

@dataclass(frozen=True)
class Specialization:
    """One compile-time variant of a kernel, as Triton's binder derives it from a launch."""
    kernel: str                     # a key of launch.SETTINGS
    dtype: str                      # of x (or, in the backward reduction, dy)
    variant: str                    # flags and dot precision, e.g. 'w, tf32'
    signature: Tuple[Tuple[str, str], ...]
    constexprs: Tuple[Tuple[Tuple[int, ...], object], ...]
    attrs: Tuple[Tuple[Tuple[int, ...], Tuple[Tuple[str, int], ...]], ...]
    block_l: int
    num_warps: int
    num_stages: int


def _variant(launch, dtype: torch.dtype) -> str:
    flag = {'HAS_W': ('w', 'no w'), 'HAS_D': ('D', 'no D')}
    name = next(k for k in launch.constexprs if k in flag)
    label = flag[name][0 if launch.constexprs[name] else 1]
    return f'{label}, {launch.constexprs["PRECISION"]}' if dtype == torch.float32 else label


def _model_operands(shape, tokens: int, dtype: torch.dtype):
    """x, w, B, C, D, dy on the meta device, strided as the NC-SSD mixer hands them over:
    x, B and C are column slices of one (batch, L, channels) activation; w and D float32."""
    act = torch.empty(BATCH, tokens, shape.channels, device='meta', dtype=dtype)
    inner, gn = shape.heads * shape.headdim, shape.ngroups * shape.dstate
    x = act[..., :inner].unflatten(-1, (shape.heads, shape.headdim))
    B = act[..., inner:inner + gn].unflatten(-1, (shape.ngroups, shape.dstate))
    C = act[..., inner + gn:].unflatten(-1, (shape.ngroups, shape.dstate))
    w = torch.empty(BATCH, tokens, shape.heads, device='meta')
    D = torch.empty(shape.heads, device='meta')
    dy = torch.empty(BATCH, tokens, shape.heads, shape.headdim, device='meta', dtype=dtype)
    return x, w, B, C, D, dy


def _contiguous_operands(shape, tokens: int, dtype: torch.dtype):
    """The same operands, each its own contiguous tensor (as tests and benchmarks pass them)."""
    return tuple(t if t.dim() == 1 else torch.empty(t.shape, device='meta', dtype=t.dtype)
                 for t in _model_operands(shape, tokens, dtype))


def vssd_launches(dtypes: Sequence[str] = tuple(DTYPES)) -> Iterator[Tuple[str, object]]:
    """(dtype name, Launch) for every launch NC-SSD makes in VSSD's variants, forward and backward,
    with and without D, fp32 with 3xTF32 and TF32 dots."""
    from vssd_mm.ops.nc_ssd.launch import (apply_launch, backward_launches, kv_reduce_launch,
                                           tf32_allowed)

    from .tuning import tf32
    current = tf32_allowed()
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for allow_tf32 in ((False, True) if dtype == torch.float32 else (current,)):
            with tf32(allow_tf32):
                for arch in ARCH_SETTINGS:
                    for shape in nc_ssd_shapes(arch):
                        for tokens in TOKENS:
                            for operands in (_model_operands, _contiguous_operands):
                                x, w, B, C, D, dy = operands(shape, tokens, dtype)
                                for skip in (D, None):
                                    fwd, kv = kv_reduce_launch(B, x, w, shape.heads)
                                    kv = kv.sum(2)
                                    app, _ = apply_launch(C, kv, x, skip)
                                    bwd_reduce, dkv = kv_reduce_launch(C, dy, None, shape.heads)
                                    bwd, _ = backward_launches(x, w, B, C, skip, dy, kv,
                                                               dkv.sum(2))
                                    for launch in (fwd, app, bwd_reduce, *bwd):
                                        yield dtype_name, launch


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def specialization_of(launch, dtype_name: str, backend) -> Specialization:
    """What Triton's JIT compiles for ``launch`` (its binder and argument packing, not a copy)."""
    from triton.runtime.jit import create_function_from_signature
    fn = launch.fn
    if not hasattr(fn, '_pack_args'):
        raise RuntimeError('the NC-SSD kernels were decorated for Triton\'s CPU interpreter '
                           '(TRITON_INTERPRET=1 when vssd_mm.ops.nc_ssd.kernels was imported); '
                           'run the check in a process without TRITON_INTERPRET')
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, specialization, options = binder(*launch.args, **launch.options)
    options, signature, constexprs, attrs = fn._pack_args(backend, options, bound,
                                                          specialization, options)
    return Specialization(launch.name, dtype_name, _variant(launch, DTYPES[dtype_name]),
                          _freeze(signature), _freeze(constexprs), _freeze(attrs),
                          launch.constexprs['BLOCK_L'], options.num_warps, options.num_stages)


def vssd_specializations(dtypes: Sequence[str] = tuple(DTYPES),
                         kernels: Optional[Sequence[str]] = None) -> List[Specialization]:
    """The distinct specializations of ``vssd_launches`` (of ``kernels``, default all), sorted by
    kernel (in launch order), dtype and variant."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend
    backend = make_backend(GPUTarget('cuda', 90, 32))  # specialization does not depend on arch
    seen: Dict[Specialization, None] = {}
    for dtype_name, launch in vssd_launches(dtypes):
        if kernels is None or launch.name in kernels:
            seen.setdefault(specialization_of(launch, dtype_name, backend))
    from vssd_mm.ops.nc_ssd.launch import SETTINGS
    order = list(SETTINGS)
    return sorted(seen, key=lambda s: (order.index(s.kernel), list(DTYPES).index(s.dtype),
                                       s.variant))


# ------------------------------------------------------------------ compiling

def _ptxas_report(ptx: str, capability: int) -> str:
    """Assemble ``ptx`` as Triton does (its ptxas and flags) and return the -v report."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'kernel.ptx')
        with open(src, 'w') as f:
            f.write(ptx)
        cmd = [get_ptxas(capability).path, '-v', '-lineinfo', '--regAllocOptLevel=2',
               f'--gpu-name={sm_arch_from_capability(capability)}', src,
               '-o', os.path.join(tmp, 'kernel.cubin')]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f'ptxas failed: {done.stderr.strip()}')
    return done.stderr


def compile_one(spec: Specialization, capability: int) -> KernelReport:
    """Compile ``spec`` for ``capability`` and read the assembler's report."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from vssd_mm.ops.nc_ssd import kernels
    arch = ARCHES[capability]
    report = KernelReport(spec.kernel, f'sm_{capability}', spec.dtype, spec.variant,
                          spec.block_l, spec.num_warps, spec.num_stages)
    try:
        source = ASTSource(getattr(kernels, f'{spec.kernel}_kernel'), dict(spec.signature),
                           dict(spec.constexprs),
                           {path: [list(a) for a in attr] for path, attr in spec.attrs})
        compiled = triton.compile(source, target=GPUTarget('cuda', capability, 32),
                                  options=dict(num_warps=spec.num_warps,
                                               num_stages=spec.num_stages))
        report.registers, report.spill_stores, report.spill_loads = parse_ptxas_log(
            _ptxas_report(compiled.asm['ptx'], capability))
        report.shared_bytes = compiled.metadata.shared
    except Exception as err:  # noqa: BLE001 (a compile error is a result to report)
        report.error = f'{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}'
        return report
    report.resident_blocks = resident_blocks(arch, report.registers, report.shared_bytes,
                                             spec.num_warps)
    report.resident_warps = report.resident_blocks * spec.num_warps
    return report


def _compile_job(job):
    return compile_one(*job)


def check_kernels(capabilities: Iterable[int] = (80, 90), dtypes: Sequence[str] = tuple(DTYPES),
                  kernels: Optional[Sequence[str]] = None,
                  jobs: Optional[int] = None) -> List[KernelReport]:
    """Compile every specialization VSSD launches (of ``kernels``, default all) for each
    architecture; one report per pair."""
    capabilities = list(capabilities)
    unknown = sorted(set(capabilities) - set(ARCHES))
    if unknown:
        raise ValueError(f'unsupported architecture(s) {unknown}; choose from {sorted(ARCHES)}')
    problem = toolchain_problem()
    if problem:
        raise RuntimeError(f'cannot compile the kernels ahead of time: {problem}')
    specs = vssd_specializations(dtypes, kernels)
    work = [(spec, cap) for cap in capabilities for spec in specs]
    jobs = jobs or min(len(work), os.cpu_count() or 1)
    if jobs <= 1:
        return [compile_one(*job) for job in work]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_compile_job, work))


def loaded_kernel_reports(device: str = 'cuda', tokens: int = 3136) -> List[KernelReport]:
    """The driver's view on a real GPU: run NC-SSD forward and backward once per operand class
    (fp16, bf16, fp32 with and without TF32) at VSSD-T's stage-1 shape, then read registers,
    local-memory spills and shared memory of every kernel the process compiled and loaded.

    Needs CUDA but none of Triton's compiler internals (any Triton version).
    """
    from vssd_mm.ops.nc_ssd import kernels, nc_ssd
    from vssd_mm.ops.nc_ssd.launch import SETTINGS, operand_class, tf32_allowed

    from .tuning import tf32
    if not torch.cuda.is_available():
        raise RuntimeError('loaded_kernel_reports needs a CUDA GPU')
    major, minor = torch.cuda.get_device_capability(device)
    capability = major * 10 + minor
    props = torch.cuda.get_device_properties(device)
    arch = ARCHES.get(capability) or GPUArch(
        capability, props.name, props.shared_memory_per_block_optin,
        props.shared_memory_per_multiprocessor, props.max_threads_per_multi_processor // 32, 32)
    shape = nc_ssd_shapes('tiny')[0]
    current = tf32_allowed()
    reports: List[KernelReport] = []
    seen = set()
    for dtype_name, allow_tf32 in (('fp16', current), ('bf16', current), ('fp32', True),
                                   ('fp32', False)):
        with tf32(allow_tf32):
            dtype = DTYPES[dtype_name]
            act = torch.randn(BATCH, tokens, shape.channels, device=device, dtype=dtype)
            inner, gn = shape.heads * shape.headdim, shape.ngroups * shape.dstate
            x = act[..., :inner].unflatten(-1, (shape.heads, shape.headdim)).requires_grad_()
            B = act[..., inner:inner + gn].unflatten(-1, (shape.ngroups, shape.dstate))
            C = act[..., inner + gn:].unflatten(-1, (shape.ngroups, shape.dstate))
            B.requires_grad_(), C.requires_grad_()
            w = torch.rand(BATCH, tokens, shape.heads, device=device, requires_grad=True)
            D = torch.ones(shape.heads, device=device, requires_grad=True)
            nc_ssd(x, w, B, C, D, backend='triton').float().square().mean().backward()
            torch.cuda.synchronize(device)
            label = operand_class(dtype)
            for name in SETTINGS:
                fn = getattr(kernels, f'{name}_kernel')
                for cache in getattr(fn, 'device_caches', {}).values():
                    for compiled in cache[0].values():
                        if id(compiled) in seen:
                            continue
                        seen.add(id(compiled))
                        compiled._init_handles()
                        meta = compiled.metadata
                        report = KernelReport(name, f'sm_{capability}', dtype_name, label,
                                              SETTINGS[name][label].block_l, meta.num_warps,
                                              meta.num_stages, compiled.n_regs,
                                              4 * compiled.n_spills, None, meta.shared)
                        report.resident_blocks = resident_blocks(arch, report.registers,
                                                                 report.shared_bytes,
                                                                 meta.num_warps)
                        report.resident_warps = report.resident_blocks * meta.num_warps
                        reports.append(report)
    return reports
