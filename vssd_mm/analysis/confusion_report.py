"""A ``confusion_inputs.Confusion`` as files and one line: a PNG (matplotlib's Agg canvas, class
names on both axes, each cell's row percent or count written in it), a JSON of the counts with the
class names, and a summary."""
import json
import os
import os.path as osp
from typing import Tuple

import numpy as np

from .confusion import iou_per_class, row_percent
from .confusion_inputs import Confusion

MAX_ANNOTATED = 30  # classes (rows) up to which each cell's value is written into it


def summary(confusion: Confusion) -> str:
    """One line: what was counted and the figures the matrix gives (segmentation: pixel
    accuracy and mIoU as mmseg's IoUMetric computes them; classification: top-1 accuracy)."""
    m, c = confusion.matrix, len(confusion.classes)
    if confusion.task == 'detection':
        s = confusion.settings
        confused = int(m[:c, :c].sum() - np.trace(m[:c, :c]))
        return (f'detection, {confusion.images} images, {confusion.num_gt} ground-truth boxes '
                f'(score >= {s["score_thr"]:g}, IoU >= {s["tp_iou_thr"]:g}): '
                f'{int(np.trace(m[:c, :c]))} right-class matches, {confused} other-class, '
                f'{int(m[c, :c].sum())} detections on background, '
                f'{int(m[:c, c].sum())} boxes missed')
    accuracy = 100 * np.trace(m) / max(m.sum(), 1)
    if confusion.task == 'segmentation':
        iou = iou_per_class(m)
        miou = 100 * np.nanmean(iou) if np.isfinite(iou).any() else float('nan')
        return (f'segmentation, {confusion.images} images, {confusion.num_gt} labelled pixels '
                f'(ignore_index {confusion.settings["ignore_index"]} left out): pixel accuracy '
                f'{accuracy:.2f} %, mIoU {miou:.2f} %')
    return f'classification, {confusion.images} images: top-1 accuracy {accuracy:.2f} %'


def draw(confusion: Confusion, counts: bool = False, title: str = ''):
    """The matrix as a matplotlib ``Figure`` (not attached to pyplot: no display needed).

    Colours are the row percent (each ground-truth class's share per prediction); the cells
    show the row percent, or the counts with ``counts``. Size grows with the classes so that
    10-30 stay readable; beyond ``MAX_ANNOTATED`` the cells carry colour only.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    labels = confusion.labels
    n = len(labels)
    percent = row_percent(confusion.matrix)
    side = max(4.8, 1.6 + 0.42 * n)
    fig = Figure(figsize=(side + 0.8, side), dpi=100, layout='constrained')
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(percent, cmap='Blues', vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, shrink=0.8, label='% of the ground-truth row')
    ticks = np.arange(n)
    font = 9 if n <= 12 else 7
    ax.set_xticks(ticks, labels, rotation=45, ha='right', rotation_mode='anchor', fontsize=font)
    ax.set_yticks(ticks, labels, fontsize=font)
    ax.set_xlabel('prediction')
    ax.set_ylabel('ground truth')
    ax.set_title(title, fontsize=9)
    if n <= MAX_ANNOTATED:
        values = confusion.matrix if counts else percent
        for (row, col), value in np.ndenumerate(values):
            if confusion.matrix[row, col] == 0:
                continue
            if counts:
                text = f'{int(value)}'
            else:  # a small share keeps a decimal, a tiny one a '<': '0' would read as none
                text = (f'{value:.0f}' if value >= 9.95 else f'{value:.1f}' if value >= 0.05
                        else '<0.1')
            ax.text(col, row, text, ha='center', va='center', fontsize=font - 1,
                    color='white' if percent[row, col] > 55 else 'black')
    return fig


def to_json(confusion: Confusion) -> dict:
    """The counts with the names of their rows (ground truth) and columns (prediction)."""
    return dict(task=confusion.task, rows='ground truth', columns='prediction',
                labels=confusion.labels, counts=confusion.matrix.tolist(),
                images=confusion.images, settings=confusion.settings)


def write(confusion: Confusion, out_dir: str, counts: bool = False,
          title: str = '') -> Tuple[str, str]:
    """``out_dir/confusion_matrix.png`` and ``out_dir/confusion_matrix.json`` (replaced if
    there); returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    png = osp.join(out_dir, 'confusion_matrix.png')
    data = osp.join(out_dir, 'confusion_matrix.json')
    draw(confusion, counts, title).savefig(png)
    with open(data, 'w') as f:
        json.dump(to_json(confusion), f, indent=1)
    return png, data
