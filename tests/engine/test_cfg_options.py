"""check_cfg_options on its own: typos are caught at every depth, new valid entries pass."""
import pytest

from conftest import REPO


def _cfg(name='configs/mmseg/demo/upernet_vssd_t_demo.py'):
    import vssd_mm  # noqa: F401
    from mmengine.config import Config
    return Config.fromfile(str(REPO / name))


@pytest.mark.parametrize('option, message', [
    ('model.decode_head.num_classs', "has no key 'num_classs'; nearest valid key: "
                                     'model.decode_head.num_classes'),
    ('model.backbone.frozen_stage', 'nearest valid key: model.backbone.frozen_stages'),
    ('train_cfg.max_iter', 'nearest valid key: train_cfg.max_iters'),
    ('optim_wrapper.optimizer.weight_decy', "AdamW takes no argument 'weight_decy'"),
])
def test_typos_in_the_segmentation_config(option, message):
    from vssd_mm.engine import ToolError
    from vssd_mm.engine.cfg_options import check_cfg_options
    with pytest.raises(ToolError, match=message):
        check_cfg_options(_cfg(), {option: 1})


def test_merged_options_still_work_after_the_check():
    from vssd_mm.engine import load_config
    cfg = load_config(str(REPO / 'configs/mmseg/demo/upernet_vssd_t_demo.py'),
                      {'model.backbone.arch': 'micro', 'train_cfg.max_iters': 8})
    assert cfg.model.backbone.arch == 'micro' and cfg.train_cfg.max_iters == 8


def test_building_the_model_before_the_runner_leaves_the_default_scope_alone():
    from mmengine.registry import DefaultScope

    from vssd_mm.engine.preflight import build_model_checked

    def scope():
        current = DefaultScope.get_current_instance()
        return current.scope_name if current else None
    before = scope()
    model = build_model_checked(_cfg())  # an mmseg config
    assert type(model).__name__ == 'EncoderDecoder'
    assert scope() == before  # a later mmpretrain/mmdet build in this process is unaffected
