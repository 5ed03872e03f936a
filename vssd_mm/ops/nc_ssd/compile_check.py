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
import re
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch

from ...variants import ARCH_SETTINGS, nc_ssd_shapes

class GPUArch(NamedTuple):
    """Per-SM and per-block limits of one compute capability (CUDA programming guide, table
    'Technical Specifications per Compute Capability')."""
    capability: int
    example: str                # a card of this architecture
    smem_per_block: int         # bytes a block may opt into
    smem_per_sm: int            # bytes
    max_warps_per_sm: int
    max_blocks_per_sm: int
    registers_per_sm: int = 65536


ARCHES: Dict[int, GPUArch] = {
    80: GPUArch(80, 'A100', 163 * 1024, 164 * 1024, 64, 32),
    86: GPUArch(86, 'RTX 3090 / A6000', 99 * 1024, 100 * 1024, 48, 16),
    89: GPUArch(89, 'RTX 4090 / L40', 99 * 1024, 100 * 1024, 48, 24),
    90: GPUArch(90, 'H100 / H200', 227 * 1024, 228 * 1024, 64, 32),
}
# One set of launch settings serves every architecture, so it must fit the smallest of them.
SHARED_LIMIT = min(arch.smem_per_block for arch in ARCHES.values())
RESERVED_SMEM_PER_BLOCK = 1024   # the driver's share of each block's shared memory (sm_80+)
MIN_RESIDENT_BLOCKS, MIN_RESIDENT_WARPS = 2, 8
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
        from .launch import SETTINGS
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
    from .launch import apply_launch, backward_launches, kv_reduce_launch
    tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        for dtype_name in dtypes:
            dtype = DTYPES[dtype_name]
            for allow_tf32 in ((False, True) if dtype == torch.float32 else (tf32,)):
                torch.backends.cuda.matmul.allow_tf32 = allow_tf32
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
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


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
    from .launch import SETTINGS
    order = list(SETTINGS)
    return sorted(seen, key=lambda s: (order.index(s.kernel), list(DTYPES).index(s.dtype),
                                       s.variant))


# ------------------------------------------------------------------ compiling and reporting

@dataclass
class KernelReport:
    """One row of the check: a specialization compiled for one architecture."""
    kernel: str
    arch: str
    dtype: str
    variant: str
    block_l: int
    num_warps: int
    num_stages: int
    registers: Optional[int] = None
    spill_stores: Optional[int] = None   # bytes per thread (on a GPU: its local memory size)
    spill_loads: Optional[int] = None    # bytes per thread (None on a GPU: not reported)
    shared_bytes: Optional[int] = None
    resident_blocks: Optional[int] = None  # per SM, the tightest of registers, shared, warps
    resident_warps: Optional[int] = None
    error: Optional[str] = None

    def problems(self) -> List[str]:
        """Why this row fails the check (empty when it passes)."""
        if self.error:
            return [self.error]
        found = []
        if self.spill_stores or self.spill_loads:
            found.append(f'spills {self.spill_stores} B stores / {self.spill_loads} B loads per '
                         'thread')
        if self.shared_bytes > SHARED_LIMIT:
            found.append(f'{self.shared_bytes} B shared memory > {SHARED_LIMIT} B (the smallest '
                         'per-block limit of the supported GPUs)')
        if self.resident_blocks < MIN_RESIDENT_BLOCKS and self.resident_warps < MIN_RESIDENT_WARPS:
            found.append(f'only {self.resident_blocks} resident block(s), '
                         f'{self.resident_warps} warps per SM')
        return found


def resident_blocks(arch: GPUArch, registers: int, shared_bytes: int, num_warps: int) -> int:
    """Blocks of ``num_warps`` warps that fit on one SM (the CUDA occupancy calculator's rules:
    registers allocated per warp in units of 256, shared memory plus a 1 KiB reserve per block)."""
    regs_per_warp = -(-registers * 32 // 256) * 256
    by_registers = (arch.registers_per_sm // regs_per_warp) // num_warps if registers else \
        arch.max_blocks_per_sm
    by_shared = arch.smem_per_sm // (shared_bytes + RESERVED_SMEM_PER_BLOCK) if shared_bytes \
        else arch.max_blocks_per_sm
    by_warps = arch.max_warps_per_sm // num_warps
    return min(by_registers, by_shared, by_warps, arch.max_blocks_per_sm)


PTXAS_REGISTERS = re.compile(r'Used (\d+) registers')
PTXAS_SPILLS = re.compile(r'(\d+) bytes spill stores, (\d+) bytes spill loads')


def parse_ptxas_log(log: str) -> Tuple[int, int, int]:
    """(registers, spill store bytes, spill load bytes) from ``ptxas -v`` output."""
    registers, spills = PTXAS_REGISTERS.search(log), PTXAS_SPILLS.search(log)
    if registers is None or spills is None:
        raise ValueError(f'unrecognised ptxas report:\n{log}')
    return int(registers.group(1)), int(spills.group(1)), int(spills.group(2))


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

    from . import kernels
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
    from . import kernels, nc_ssd
    from .launch import SETTINGS, operand_class
    if not torch.cuda.is_available():
        raise RuntimeError('loaded_kernel_reports needs a CUDA GPU')
    major, minor = torch.cuda.get_device_capability(device)
    capability = major * 10 + minor
    props = torch.cuda.get_device_properties(device)
    arch = ARCHES.get(capability) or GPUArch(
        capability, props.name, props.shared_memory_per_block_optin,
        props.shared_memory_per_multiprocessor, props.max_threads_per_multi_processor // 32, 32)
    shape = nc_ssd_shapes('tiny')[0]
    tf32 = torch.backends.cuda.matmul.allow_tf32
    reports: List[KernelReport] = []
    seen = set()
    try:
        for dtype_name, allow_tf32 in (('fp16', tf32), ('bf16', tf32), ('fp32', True),
                                       ('fp32', False)):
            torch.backends.cuda.matmul.allow_tf32 = allow_tf32
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
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return reports


def format_table(reports: Sequence[KernelReport]) -> str:
    """The reports as a fixed-width table, one line per row, failures marked."""
    head = (f'{"kernel":<10} {"arch":<6} {"dtype":<5} {"variant":<13} {"BLOCK_L":>7} {"warps":>5} '
            f'{"stages":>6} '
            f'{"regs":>4} {"spill B st/ld":>13} {"shared KiB":>10} {"blocks/SM":>9} '
            f'{"warps/SM":>8}  result')
    lines = [head, '-' * len(head)]
    for r in reports:
        problems = r.problems()
        if r.error:
            numbers = f'{"":>4} {"":>13} {"":>10} {"":>9} {"":>8}'
        else:
            loads = '-' if r.spill_loads is None else r.spill_loads  # the driver reports stores
            numbers = (f'{r.registers:>4} {f"{r.spill_stores}/{loads}":>13} '
                       f'{r.shared_bytes / 1024:>10.1f} {r.resident_blocks:>9} '
                       f'{r.resident_warps:>8}')
        lines.append(f'{r.kernel:<10} {r.arch:<6} {r.dtype:<5} {r.variant:<13} {r.block_l:>7} '
                     f'{r.num_warps:>5} {r.num_stages:>6} {numbers}  {"; ".join(problems) or "ok"}')
    return '\n'.join(lines)


def format_markdown(reports: Sequence[KernelReport]) -> str:
    """The reports as a Markdown table: one row per specialization, one column per architecture
    ("registers / shared KiB / resident warps per SM"), spills summed over the architectures."""
    arches = list(dict.fromkeys(r.arch for r in reports))
    rows: Dict[tuple, Dict[str, KernelReport]] = {}
    for r in reports:
        key = (r.kernel, r.dtype, r.variant, r.block_l, r.num_warps, r.num_stages)
        rows.setdefault(key, {})[r.arch] = r
    lines = ['| kernel | dtype | variant | BLOCK_L / warps / stages | '
             + ' | '.join(f'{a}: regs / KiB / warps' for a in arches) + ' | spill B | result |',
             '|' + '---|' * (6 + len(arches))]
    for (kernel, dtype, variant, block_l, warps, stages), by_arch in rows.items():
        cells = []
        for arch in arches:
            r = by_arch.get(arch)
            cells.append('' if r is None else 'error' if r.error else
                         f'{r.registers} / {r.shared_bytes / 1024:.1f} / {r.resident_warps}')
        spills = sum((r.spill_stores or 0) + (r.spill_loads or 0) for r in by_arch.values())
        failed = any(r.problems() for r in by_arch.values())
        lines.append(f'| {kernel} | {dtype} | {variant} | {block_l} / {warps} / {stages} | '
                     + ' | '.join(cells) + f' | {spills} | {"FAIL" if failed else "ok"} |')
    return '\n'.join(lines)


def report_rows(reports: Sequence[KernelReport]) -> List[dict]:
    """JSON-ready rows (every field of KernelReport)."""
    return [asdict(r) for r in reports]
