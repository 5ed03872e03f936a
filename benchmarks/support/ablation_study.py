"""The paper's Table-5 models (VSSD-Micro ablation, ``configs/mmpretrain/ablation``) side by side:
parameters, FLOPs and training throughput, and the training-speed ratios NC-SSD : SSD : Bi-SSD.

Throughput is measured in rounds (each round times every model once, in table order) and the
median over rounds is reported, so that a slow spell of the machine does not land on one model.
"""
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from vssd_mm.analysis.complexity import analyze_config
from vssd_mm.analysis.model_builder import mmengine_warnings_only
from vssd_mm.configs import CONFIGS_DIR

from .throughput import measure

ABLATION_DIR = CONFIGS_DIR / 'mmpretrain' / 'ablation'

# Table 5's rows: config file -> (label, the paper's top-1 relative to row 1 where the paper's
# text gives it: NC-SSD +0.6 over SSD and +0.2 over Bi-SSD, hence Bi-SSD +0.4; the paper gives no
# number for the last two rows, only that both were adopted)
TABLE5 = {
    'vssd_m_ablation_1_ssd_100e_in1k.py': ('SSD (causal), simple stem/downsampling', '0 (row 1)'),
    'vssd_m_ablation_2_bi_ssd_100e_in1k.py': ('Bi-SSD', '+0.4'),
    'vssd_m_ablation_3_nc_ssd_100e_in1k.py': ('NC-SSD', '+0.6'),
    'vssd_m_ablation_4_attention_100e_in1k.py': ('+ attention in the last stage', 'higher'),
    'vssd_m_ablation_5_overlap_100e_in1k.py': ('+ overlapped stem/downsampling (= VSSD-M)',
                                               'higher'),
}
# the rows whose training speeds the paper compares (they differ in the mixer only)
SPEED_ROWS = {'NC-SSD': 'vssd_m_ablation_3_nc_ssd_100e_in1k.py',
              'SSD': 'vssd_m_ablation_1_ssd_100e_in1k.py',
              'Bi-SSD': 'vssd_m_ablation_2_bi_ssd_100e_in1k.py'}


def table5_configs() -> List[Path]:
    """Table 5's configs in row order."""
    return [ABLATION_DIR / name for name in TABLE5]


@dataclass
class AblationRow:
    config: str                  # file name
    label: str
    paper_top1: str              # relative to row 1, as the paper states it ('' if not a row)
    params: int
    flops: int                   # multiply-adds per image, NC-SSD counted exactly
    train_images_per_s: List[float] = field(default_factory=list)  # one per round
    device: str = ''             # as throughput.measure names them
    precision: str = ''

    @property
    def train_median(self) -> float:
        return statistics.median(self.train_images_per_s)


def study(configs: Sequence[Path], shape: Tuple[int, int] = (224, 224), batch_size: int = 8,
          device: str = 'cpu', amp: bool = False, rounds: int = 3, warmup: int = 1,
          iters: int = 3) -> List[AblationRow]:
    """Params and FLOPs of each config's model at ``shape`` (H, W), then ``rounds`` rounds of
    training-step timing (``warmup`` untimed + ``iters`` timed steps of ``batch_size`` synthetic
    images per model per round)."""
    cfgs = [Config.fromfile(str(c)) for c in configs]
    rows = []
    for path, cfg in zip(configs, cfgs):
        with mmengine_warnings_only():  # the data preprocessor's INFO line per build
            complexity = analyze_config(cfg, shape)
        label, top1 = TABLE5.get(Path(path).name, (Path(path).stem, ''))
        rows.append(AblationRow(Path(path).name, label, top1, complexity.params,
                                complexity.flops))
    for _ in range(rounds):
        for row, cfg in zip(rows, cfgs):
            with mmengine_warnings_only():
                (result, ) = measure(cfg, shape, batch_size, device, amp, ('training', ),
                                     warmup, iters)
            row.train_images_per_s.append(result.images_per_s)
            row.device, row.precision = result.device, result.precision
    return rows


def speed_ratios(rows: Sequence[AblationRow]) -> Optional[Dict[str, float]]:
    """Training images/s of SSD and Bi-SSD relative to NC-SSD (NC-SSD = 1), or None unless all
    three rows were measured."""
    by_name = {r.config: r for r in rows}
    if not all(name in by_name for name in SPEED_ROWS.values()):
        return None
    nc = by_name[SPEED_ROWS['NC-SSD']].train_median
    return {mixer: by_name[name].train_median / nc for mixer, name in SPEED_ROWS.items()}
