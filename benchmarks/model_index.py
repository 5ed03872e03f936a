"""Write the model index: ``configs/{mmpretrain,mmdet,mmseg}/metafile.yml`` (OpenMMLab's
model-index format) and ``model-index.yml`` at the root, one model per official file of
``vssd_mm/models/zoo.py`` (name, config, URL, published numbers), with the parameters and FLOPs
that ``tools/get_flops.py`` counts for the config at the paper's input size (NC-SSD counted over
all heads). Usage: python -m benchmarks.model_index [--check]

The files are committed; ``tests/models/test_model_index.py`` checks them against zoo.py and the
models. Rerun after changing zoo.py or a variant (several minutes on a CPU: the detection models
are counted at 800x1280).
"""
import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

REPO = Path(__file__).resolve().parents[1]
PAPER = {'Title': 'VSSD: Vision Mamba with Non-Causal State Space Duality',
         'URL': 'https://arxiv.org/abs/2407.18559'}
CODE = {'URL': 'https://github.com/YuHengsss/VSSD'}
SHAPES = {'classification': (224, 224), 'detection': (800, 1280), 'segmentation': (512, 2048)}
FOLDERS = {'classification': 'mmpretrain', 'detection': 'mmdet', 'segmentation': 'mmseg'}
DOCS = {'classification': 'classification', 'detection': 'detection',
        'segmentation': 'segmentation'}  # the manual's page of each task
SCHEDULE_NAMES = {'1x': '1x', '3x_ms': 'ms-crop-3x'}  # mmdet's names of the two schedules
SCHEDULE_EPOCHS = {'1x': 12, '3x_ms': 36}


def model_name(entry) -> str:
    """The entry's name in mmpretrain's / mmdet's / mmseg's naming scheme."""
    if entry.task == 'classification':  # swin-tiny_3rdparty_in1k: the release's weights
        technique = '-mesa' if 'MESA' in entry.note else ''
        return f'vssd-{entry.variant}_3rdparty{technique}_in1k'
    if entry.task == 'detection':  # mask-rcnn_swin-t-p4-w7_fpn_1x_coco
        return f'mask-rcnn_vssd-{entry.variant}_fpn_{SCHEDULE_NAMES[entry.schedule]}_coco'
    # swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512
    return f'vssd-{entry.variant}-in1k-pre_upernet_8xb2-160k_ade20k-512x512'


def _numbers(published: str) -> List[float]:
    return [float(v) for v in re.findall(r'\d+\.\d', published)]


def results(entry) -> List[dict]:
    """The published numbers of ``entry`` as model-index Results."""
    values = _numbers(entry.published)
    if entry.task == 'classification':
        return [dict(Task='Image Classification', Dataset='ImageNet-1k',
                     Metrics={'Top 1 Accuracy': values[0]})]
    if entry.task == 'detection':
        return [dict(Task='Object Detection', Dataset='COCO', Metrics={'box AP': values[0]}),
                dict(Task='Instance Segmentation', Dataset='COCO',
                     Metrics={'mask AP': values[1]})]
    return [dict(Task='Semantic Segmentation', Dataset='ADE20K',
                 Metrics={'mIoU': values[0], 'mIoU(ms+flip)': values[1]})]


def complexity(config: str, task: str) -> Tuple[int, int]:
    """(parameters, exact FLOPs) of ``config``'s model at the task's paper input size; the
    parameters of the model that infers (mmseg's auxiliary head, a training aid, left out)."""
    from mmengine.config import Config

    import vssd_mm  # noqa: F401
    from vssd_mm.analysis.complexity import analyze_config
    c = analyze_config(Config.fromfile(str(REPO / config)), SHAPES[task])
    return c.inference_params, c.flops


COLLECTIONS = {
    'classification': dict(Name='VSSD', Metadata={
        'Training Data': 'ImageNet-1k', 'Training Techniques': ['AdamW', 'Weight Decay'],
        'Epochs': 300, 'Batch Size': 1024,
        'Architecture': ['Non-Causal State Space Duality', 'Multi-Head Self-Attention',
                         'Depthwise Convolution']}),
    'detection': dict(Name='Mask R-CNN VSSD', Metadata={
        'Training Data': 'COCO', 'Training Techniques': ['AdamW', 'Weight Decay'],
        'Batch Size': 16, 'Architecture': ['VSSD', 'FPN', 'RPN', 'RoIAlign', 'Mask R-CNN']}),
    'segmentation': dict(Name='UPerNet VSSD', Metadata={
        'Training Data': 'ADE20K', 'Training Techniques': ['AdamW', 'Weight Decay'],
        'Batch Size': 16, 'Iterations': 160000, 'Architecture': ['VSSD', 'UPerNet']}),
}


def metafile(task: str, counts: Dict[str, Tuple[int, int]]) -> dict:
    """The metafile of ``task``; ``counts``: config -> (parameters, FLOPs)."""
    from vssd_mm.models.zoo import OFFICIAL_CHECKPOINTS
    # paths relative to the repository root, as OpenMMLab's metafiles write them
    collection = dict(COLLECTIONS[task], Paper=PAPER, README=f'docs/{DOCS[task]}.md', Code=CODE)
    models = []
    for entry in OFFICIAL_CHECKPOINTS:
        if entry.task != task:
            continue
        params, flops = counts[entry.config]
        metadata = {'FLOPs': flops, 'Parameters': params,
                    'Training Data': collection['Metadata']['Training Data']}
        if entry.schedule:
            metadata['Epochs'] = SCHEDULE_EPOCHS[entry.schedule]
        if 'MESA' in entry.note:
            metadata['Training Techniques'] = ['AdamW', 'Weight Decay', 'MESA']
        models.append({'Name': model_name(entry), 'In Collection': collection['Name'],
                       'Config': entry.config, 'Metadata': metadata,
                       'Results': results(entry), 'Weights': entry.url})
    return {'Collections': [collection], 'Models': models}


def write(text_of: Dict[Path, str], check: bool) -> int:
    stale = [path for path, text in text_of.items()
             if not path.is_file() or path.read_text() != text]
    if check:
        for path in stale:
            print(f'error: {path.relative_to(REPO)} is not what zoo.py gives: rerun '
                  'python -m benchmarks.model_index', file=sys.stderr)
        return 2 if stale else 0
    for path in stale:
        path.write_text(text_of[path])
        print(f'wrote {path.relative_to(REPO)}')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 2 naming each file that differs')
    parser.add_argument('--tasks', nargs='+', choices=sorted(FOLDERS), default=sorted(FOLDERS),
                        help='the metafiles to (re)write (default: all three)')
    args = parser.parse_args(argv)
    from mmengine.utils import ProgressBar

    from vssd_mm.models.zoo import OFFICIAL_CHECKPOINTS
    configs = sorted({(e.config, e.task) for e in OFFICIAL_CHECKPOINTS if e.task in args.tasks})
    counts, bar = {}, ProgressBar(len(configs))
    for config, task in configs:
        counts[config] = complexity(config, task)
        bar.update()
    header = ('# Written by python -m benchmarks.model_index from vssd_mm/models/zoo.py; FLOPs: '
              'multiply-adds of tools/get_flops.py (NC-SSD over all heads) at {} x {}.\n')
    text_of = {REPO / 'configs' / FOLDERS[task] / 'metafile.yml':
               header.format(*SHAPES[task])
               + yaml.safe_dump(metafile(task, counts), sort_keys=False, width=100)
               for task in args.tasks}
    text_of[REPO / 'model-index.yml'] = yaml.safe_dump(
        {'Import': [f'configs/{FOLDERS[t]}/metafile.yml' for t in sorted(FOLDERS)]},
        sort_keys=False)
    return write(text_of, args.check)


if __name__ == '__main__':
    sys.exit(main())
