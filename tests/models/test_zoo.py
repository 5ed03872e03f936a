"""The model zoo: configs name the official files by URL, downloads land once in torch's hub cache
(loopback HTTP server, no network), offline is one clear error, docs/model_zoo.md lists every file."""
import re
from pathlib import Path

import pytest
import torch

from vssd_mm.models import VSSD
from vssd_mm.models.checkpoints import CheckpointDownloadError, cache_dir
from vssd_mm.models.zoo import HF_REPO, OFFICIAL_CHECKPOINTS, official_url

REPO = Path(__file__).resolve().parents[2]


def _config(path):
    import vssd_mm  # noqa: F401
    from mmengine.config import Config
    return Config.fromfile(str(REPO / path))


def _official_file(path, arch='micro', seed=0):
    """An official-layout classification file of ``arch`` (random weights); returns its state."""
    torch.manual_seed(seed)
    state = {k: v for k, v in VSSD(arch).state_dict().items() if not k.startswith('outnorm')}
    torch.save({'model': state}, path)
    return state


def test_every_shipped_config_names_an_official_file_by_url():
    official = {c.filename for c in OFFICIAL_CHECKPOINTS if c.task == 'classification'}
    configs = [p for p in (REPO / 'configs').glob('mm*/*.py')]
    assert len(configs) == 19  # 8 detection, 4 segmentation, 4 classification + 3 with MESA
    for path in configs:
        cfg = _config(path.relative_to(REPO))
        init_cfg = cfg.model.backbone.get('init_cfg')
        if 'mmpretrain' in str(path):
            assert init_cfg is None  # classifiers train from scratch
            continue
        url = init_cfg.checkpoint
        assert url.startswith(f'{HF_REPO}/resolve/main/'), (path, url)
        name = url.rsplit('/', 1)[1]
        assert name in official and cfg.model.backbone.arch in name, (path, url)


def test_zoo_entries_point_at_configs_of_their_variant():
    for entry in OFFICIAL_CHECKPOINTS:
        assert entry.url == official_url(entry.filename)
        assert (REPO / entry.config).is_file(), entry
        assert _config(entry.config).model.backbone.arch == entry.variant, entry


def test_model_zoo_page_lists_every_official_file_with_its_command():
    readme = (REPO / 'docs' / 'model_zoo.md').read_text()
    for entry in OFFICIAL_CHECKPOINTS:
        rows = [line for line in readme.splitlines()
                if line.startswith('|') and f'`{entry.filename}`' in line]
        assert rows, f'{entry.filename} missing from docs/model_zoo.md'
        command = f'python tools/test.py {entry.config} {entry.url}'
        assert any(command in row for row in rows), (entry.filename, command)
        published = re.findall(r'\d+\.\d', entry.published)
        assert all(any(value in row for row in rows) for value in published), entry
    assert 'mask_rcnn_vssd_fpn_coco_small.pth' in readme and 'Small 3x' in readme


def test_backbone_weights_by_url_download_once_then_come_from_the_cache(file_server):
    folder, base, stop = file_server
    state = _official_file(folder / 'vssd_micro_best.pth')
    url = f'{base}/vssd_micro_best.pth'
    model = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=url))
    model.init_weights()
    cached = Path(cache_dir()) / 'vssd_micro_best.pth'
    assert cached.is_file() and str(cached).startswith(str(folder.parent / 'torch_home'))
    assert not list(Path(cache_dir()).glob('*.lock'))
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key
    stop()  # the network is gone: the cache serves
    again = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=url))
    again.init_weights()
    assert torch.equal(again.state_dict()['patch_embed.conv3.1.conv.weight'],
                       state['patch_embed.conv3.1.conv.weight'])


@pytest.mark.parametrize('served', [False, True], ids=['server-down', 'not-found'])
def test_unreachable_url_is_one_clear_error(file_server, served):
    folder, base, stop = file_server
    if not served:
        stop()
    url = f'{base}/vssd_tiny_best_ema.pth'
    model = VSSD('micro', init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(CheckpointDownloadError) as info:
        model.init_weights()
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(f'cannot download {url} (')
    assert ('HTTP 404' in message) == served
    assert f'cached in {cache_dir()}' in message and 'as vssd_tiny_best_ema.pth' in message
    assert '--cfg-options model.backbone.init_cfg.checkpoint=PATH' in message
    assert not (Path(cache_dir()) / 'vssd_tiny_best_ema.pth').exists()  # no half file


def test_train_preflight_fetches_pretrained_urls_or_says_what_to_do(file_server):
    from vssd_mm.engine import ToolError
    from vssd_mm.engine.preflight import check_pretrained
    folder, base, stop = file_server
    cfg = _config('configs/mmdet/mask_rcnn_vssd_m_1x.py')
    cfg.model.backbone.init_cfg.checkpoint = f'{base}/vssd_micro_best.pth'
    with pytest.raises(ToolError) as err:  # not served yet: 404
        check_pretrained(cfg)
    message = str(err.value)
    assert message.startswith('pretrained weights (model.backbone.init_cfg): cannot '
                              f'download {base}/vssd_micro_best.pth (HTTP 404')
    assert '--cfg-options model.backbone.init_cfg.checkpoint=PATH' in message
    assert 'train from scratch with --cfg-options model.backbone.init_cfg=None' in message
    _official_file(folder / 'vssd_micro_best.pth')
    check_pretrained(cfg)  # downloads
    stop()
    check_pretrained(cfg)  # cached: no network needed
    # the shipped URL itself is served from the cache when the file is there: no download
    cfg = _config('configs/mmdet/mask_rcnn_vssd_m_1x.py')
    check_pretrained(cfg)
