"""The model index: the metafiles list every official file of the zoo once, with its config, URL
and published numbers; mmpretrain's list_models / get_model(pretrained=True) / inference_model
know the VSSD classifiers (weights by URL from a loopback server, converted from the release's
layout, compared tensor by tensor with the file)."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vssd_mm.models import VSSD
from vssd_mm.models.zoo import HF_REPO, OFFICIAL_CHECKPOINTS

REPO = Path(__file__).resolve().parents[2]
METAFILES = {'classification': 'configs/mmpretrain/metafile.yml',
             'detection': 'configs/mmdet/metafile.yml',
             'segmentation': 'configs/mmseg/metafile.yml'}
CLASSIFIERS = [e for e in OFFICIAL_CHECKPOINTS if e.task == 'classification']


def _index():
    """The root model-index.yml as OpenMMLab's modelindex loader reads it (imports followed,
    collections merged into the models)."""
    from modelindex.load_model_index import load
    index = load(str(REPO / 'model-index.yml'))
    index.build_models_with_collections()
    return index


def _models_of(metafile):
    from modelindex.load_model_index import load
    index = load(str(REPO / metafile))
    index.build_models_with_collections()
    return index.models


def test_model_index_lists_every_official_file_once_with_its_config_and_numbers():
    index = _index()
    assert sorted(Path(m.filepath).resolve() for m in index.models) == sorted(
        (REPO / METAFILES[e.task]).resolve() for e in OFFICIAL_CHECKPOINTS)
    names = [m.name for m in index.models]
    assert len(set(names)) == len(names) == len(OFFICIAL_CHECKPOINTS)
    by_url = {m.weights: m for m in index.models}
    collections = {c.name: c for c in index.collections}
    for entry in OFFICIAL_CHECKPOINTS:
        model = by_url[entry.url]  # every URL equals the zoo's, each file once
        assert model.config == entry.config and (REPO / model.config).is_file(), entry
        collection = collections[model.in_collection]
        assert collection.paper['URL'] == 'https://arxiv.org/abs/2407.18559'
        assert (REPO / collection.readme).is_file()  # relative to the root, as OpenMMLab's
        metrics = [v for result in model.results for v in result.metrics.values()]
        assert sorted(metrics) == sorted(float(v) for v in re.findall(r'\d+\.\d',
                                                                       entry.published))
        assert entry.variant in model.name and ('mesa' in model.name) == ('MESA' in entry.note)
        assert model.name == model.name.lower()  # mmpretrain's hub looks names up lowercased
        assert model.metadata.parameters > 0 and model.metadata.flops > 0
    # mim reads PACKAGE/.mim/model-index.yml, its imports relative to .mim (the installed layout)
    from modelindex.load_model_index import load
    from vssd_mm.models.model_hub import MIM_DIR
    mim = load(str(MIM_DIR / 'model-index.yml'))
    assert sorted(m.name for m in mim.models) == sorted(names)
    tasks = {m.name: {r.task for r in m.results} for m in index.models}
    assert {n for n, t in tasks.items() if t == {'Image Classification'}} == {
        m.name for m in _models_of(METAFILES['classification'])}


def test_classifier_metadata_counts_the_models_parameters_and_flops():
    """VSSD-Micro's entry (the others are written by the same code, python -m
    benchmarks.model_index): parameters counted by torch on the config's model, FLOPs
    tools/get_flops.py's exact count (the counter itself is tested in tests/analysis)."""
    import vssd_mm  # noqa: F401
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    from vssd_mm.analysis import count_flops
    config = 'configs/mmpretrain/vssd_m_8xb128_in1k.py'
    entry = next(m for m in _models_of(METAFILES['classification']) if m.config == config)
    model = MODELS.build(Config.fromfile(str(REPO / config)).model).eval()
    assert entry.metadata.parameters == sum(p.numel() for p in model.parameters())

    class Logits(torch.nn.Module):  # the classifier as a function of the image tensor
        def __init__(self):
            super().__init__()
            self.classifier = model

        def forward(self, x):
            return self.classifier(x, mode='tensor')
    flops, _ = count_flops(Logits(), (torch.randn(1, 3, 224, 224), ), 'exact')
    assert entry.metadata.flops == flops


def test_list_models_names_the_vssd_classifiers():
    import vssd_mm  # noqa: F401
    from mmpretrain import list_models
    expected = sorted(m.name for m in _models_of(METAFILES['classification']))
    assert list_models('vssd') == expected
    assert list_models('vssd', task='Image Classification') == expected
    assert 'vssd-tiny_3rdparty-mesa_in1k' in expected
    assert not list_models('mask-rcnn_vssd')  # detectors are not mmpretrain models


def test_import_vssd_mm_imports_no_mmpretrain_and_the_hub_knows_the_models_later():
    code = ('import sys, vssd_mm; assert "mmpretrain" not in sys.modules; '
            'from mmpretrain import list_models; print(list_models("vssd"))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert len(re.findall(r"'vssd-\w+_3rdparty(?:-mesa)?_in1k'", out)) == len(CLASSIFIERS)


def _official_classifier_file(path, arch='micro', num_classes=1000):
    """An official-layout classification file (``model`` and ``model_ema``, random weights, the
    classifier's ``norm`` and ``head`` at the top level); returns its ``model`` weights."""
    def weights(seed):
        torch.manual_seed(seed)
        state = {k: v for k, v in VSSD(arch).state_dict().items()
                 if not k.startswith('outnorm')}
        dim = state['layers.3.blocks.0.norm1.weight'].shape[0]
        state.update({'norm.weight': torch.rand(dim), 'norm.bias': torch.randn(dim),
                      'head.weight': torch.randn(num_classes, dim), 'head.bias': torch.randn(
                          num_classes)})
        return state
    model, ema = weights(0), weights(1)
    torch.save({'model': model, 'model_ema': ema, 'epoch': 299}, path)
    return model


def test_get_model_pretrained_loads_the_official_file_converted_and_infers(file_server):
    import vssd_mm  # noqa: F401
    from mmpretrain import get_model, inference_model
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES

    from vssd_mm.models.checkpoints import CheckpointDownloadError, cache_dir
    folder, base, stop = file_server
    name, filename = 'vssd-micro_3rdparty_in1k', 'vssd_micro_best.pth'
    mirror = (re.escape(f'{HF_REPO}/resolve/main'), base)  # get_model's own URL redirect
    with pytest.raises(CheckpointDownloadError, match=r'HTTP 404.*url_mapping'):
        get_model(name, pretrained=True, url_mapping=mirror)
    official = _official_classifier_file(folder / filename)

    model = get_model(name, pretrained=True, url_mapping=mirror)
    cached = Path(cache_dir()) / filename
    assert cached.is_file() and str(cached).startswith(str(folder.parent / 'torch_home'))
    # the release's classifier in mmpretrain's names: backbone, final norm = the last out norm
    expected = {}
    for key, value in official.items():
        if key.startswith('norm.'):
            expected['backbone.outnorm3.' + key[5:]] = value
        elif key.startswith('head.'):
            expected['head.fc.' + key[5:]] = value
        else:
            expected['backbone.' + key] = value
    state = model.state_dict()
    assert sorted(state) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key

    stop()  # the network is gone: the release's URL is served from the cache by name
    image = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)
    result = inference_model(name, image)
    assert result['pred_label'] == int(np.argmax(result['pred_scores']))
    assert result['pred_class'] == IMAGENET_CATEGORIES[result['pred_label']]
    same = inference_model(model, image)  # by name: the same weights, from the cache
    assert np.allclose(same['pred_scores'], result['pred_scores'], atol=1e-6)
