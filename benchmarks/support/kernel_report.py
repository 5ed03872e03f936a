"""The rows of the ahead-of-time kernel check (compile_check.py) and of the driver's report on a
GPU: per-architecture limits, one KernelReport per compiled kernel, the pass/fail rules (no spills,
shared memory within the smallest per-block limit, two resident blocks or eight warps per SM), the
``ptxas -v`` parser and the table / Markdown / JSON forms."""
import re
from dataclasses import asdict, dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

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
