"""``tools/image_demo.py``: predictions on the user's images or video, drawn and written as JSON.

Output layout under ``out_dir`` (``STEM``: the input's path relative to the folder given, or its
file name, without suffix):

- ``vis/STEM.png``: the drawn image (a video: ``vis/STEM.<its suffix>``, every frame drawn, same
  frame count and fps);
- ``preds/STEM.json``: the predictions (``records`` describes them; a video: ``{'video', 'fps',
  'frames': [one record per frame, with its index]}``); seg also ``preds/STEM_labels.png`` per
  image (a video: ``preds/STEM/FRAME_labels.png`` per frame).
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional

import cv2
from mmengine.config import Config
from mmengine.utils import ProgressBar

from ..engine.paths import check_folder_to_write
from . import records
from .drawing import Drawer
from .inputs import Inputs, VideoWriter, collect_inputs, read_image
from .predictor import Predictor, describe


@dataclass
class DemoOptions:
    """The tool's flags: ``score_thr`` (det), ``masks`` (det: RLE masks in the JSON), ``topk``
    (cls), ``draw_scale`` (size of the drawn pictures relative to the input)."""
    score_thr: float = 0.3
    masks: bool = True
    topk: int = 5
    draw_scale: float = 1.


@dataclass
class DemoResult:
    """What was written: the JSON files, drawn pictures / video, and how many images (frames)
    were predicted."""
    json_files: List[str] = field(default_factory=list)
    drawn_files: List[str] = field(default_factory=list)
    count: int = 0
    video: bool = False


class _Writer:
    """Turns a prediction into its record (and seg label map) and its drawing."""

    def __init__(self, predictor: Predictor, options: DemoOptions, scale_drawing: float):
        self.predictor = predictor
        self.options = options
        self.classes = predictor.classes()
        self.drawer = Drawer(predictor.cfg, predictor.task, self.classes, predictor.palette(),
                             scale_drawing)

    def predict(self, img, img_path: str, index: int, label_png: str, json_file: str):
        """(record, drawn BGR image) of ``img``; seg writes its label map to ``label_png``
        (named in the record relative to ``json_file``'s folder)."""
        task, opts = self.predictor.task, self.options
        sample = self.predictor(img, img_path, index)
        if task == 'det':
            sample = records.keep_above(sample, opts.score_thr)
            record = records.det_record(sample, self.classes, opts.masks)
            record['score_thr'] = opts.score_thr
        elif task == 'seg':
            ids = records.label_map(sample)
            os.makedirs(osp.dirname(label_png), exist_ok=True)
            cv2.imwrite(label_png, ids)
            record = records.seg_record(ids, self.classes,
                                        osp.relpath(label_png, osp.dirname(json_file)))
        else:
            record = records.cls_record(sample, self.classes, opts.topk)
        return record, self.drawer(img, sample)


def _dump(record: dict, path: str) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(record, f)
    return path


def run_demo(cfg: Config, checkpoint: str, input_path: str, out_dir: str, *,
             options: Optional[DemoOptions] = None, device: str = 'cpu', tta: bool = False,
             state_key: Optional[str] = None, config_name: str = 'the config',
             progress: bool = True) -> DemoResult:
    """Predict every input of ``input_path`` with ``cfg``'s model and ``checkpoint``; write the
    files described in the module docstring under ``out_dir``. Raises ``ToolError`` (and the
    checkpoint errors of ``load_into``): for the inputs, the config and the checkpoint before
    anything is written; for an image that cannot be read or decoded when it is reached (the
    pictures of the images before it stay written)."""
    options = options or DemoOptions()
    inputs = collect_inputs(input_path)
    check_folder_to_write(out_dir, '--out-dir')
    predictor = Predictor(cfg, checkpoint, device=device, tta=tta, state_key=state_key,
                          config_name=config_name)
    writer = _Writer(predictor, options, options.draw_scale)
    result = DemoResult()
    if inputs.video is not None:
        _run_video(inputs, writer, out_dir, result, progress)
        return result
    bar = ProgressBar(len(inputs.images)) if progress else None
    for index, path in enumerate(inputs.images):
        img = read_image(path, predictor.color_type, predictor.imdecode_backend)
        stem = describe(path, inputs.root)
        json_file = osp.join(out_dir, 'preds', f'{stem}.json')
        record, drawn = writer.predict(img, path, index,
                                       osp.join(out_dir, 'preds', f'{stem}_labels.png'), json_file)
        result.json_files.append(_dump({'img_path': path, **record}, json_file))
        drawn_file = osp.join(out_dir, 'vis', f'{stem}.png')
        os.makedirs(osp.dirname(drawn_file), exist_ok=True)
        cv2.imwrite(drawn_file, drawn, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        result.drawn_files.append(drawn_file)
        result.count += 1
        if bar:
            bar.update()
    return result


def _run_video(inputs: Inputs, writer: _Writer, out_dir: str, result: DemoResult,
               progress: bool) -> None:
    video = inputs.video
    stem = describe(video.path, inputs.root)
    drawn_file = osp.join(out_dir, 'vis', stem + osp.splitext(video.path)[1].lower())
    os.makedirs(osp.dirname(drawn_file), exist_ok=True)
    scale = writer.drawer.scale
    out = VideoWriter(drawn_file, video.fps,
                      (round(video.size[0] * scale), round(video.size[1] * scale)))
    bar = ProgressBar(video.frame_count) if progress and video.frame_count > 0 else None
    json_file = osp.join(out_dir, 'preds', f'{stem}.json')
    frames = []
    try:
        for index, frame in enumerate(video.frames()):
            record, drawn = writer.predict(
                frame, video.path, index,
                osp.join(out_dir, 'preds', stem, f'{index:06d}_labels.png'), json_file)
            frames.append({'frame': index, **record})
            out.write(drawn)
            if bar:
                bar.update()
    finally:
        out.close()
    result.json_files.append(_dump({'video': video.path, 'fps': video.fps, 'frames': frames},
                                   json_file))
    result.drawn_files.append(drawn_file)
    result.count = len(frames)
    result.video = True
