"""Official classification checkpoints -> mmpretrain ImageClassifier with unchanged logits."""
import torch

from vssd_mm.models import VSSD


def test_converted_checkpoint_gives_the_official_logits(tmp_path, tool):
    import vssd_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    backbone = VSSD('micro', out_indices=(3,)).eval()
    norm, head = torch.nn.LayerNorm(384), torch.nn.Linear(384, 10)
    torch.nn.init.normal_(norm.weight)
    official = {k: v for k, v in backbone.state_dict().items() if not k.startswith('outnorm')}
    official.update({f'norm.{k}': v for k, v in norm.state_dict().items()})
    official.update({f'head.{k}': v for k, v in head.state_dict().items()})
    src, dst = tmp_path / 'vssd_micro_best.pth', tmp_path / 'vssd_micro_mmpretrain.pth'
    torch.save({'model': official}, src)
    tool('convert_checkpoint.py', src, dst)
    assert tool('convert_checkpoint.py', src, dst, check=False).returncode != 0  # no overwrite

    classifier = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='VSSD', arch='micro', out_indices=(3,)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=384)))
    missing, unexpected = classifier.load_state_dict(torch.load(dst)['state_dict'], strict=True)
    assert not missing and not unexpected
    classifier.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        # the official classifier: the last stage's tokens -> norm -> mean over tokens -> head
        backbone.outnorm3 = torch.nn.Identity()  # raw stage-3 tokens, same weights as official
        tokens = backbone(x)[0].flatten(2).transpose(1, 2)
        expected = head(norm(tokens).mean(1))
        got = classifier(x, mode='tensor')
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_converted_checkpoint_fits_the_shipped_classification_config(tmp_path, tool):
    """An official ImageNet file, converted, loads strictly into configs/mmpretrain's model."""
    from pathlib import Path

    import vssd_mm  # noqa: F401
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    backbone = VSSD('micro', out_indices=(3,))
    official = {k: v for k, v in backbone.state_dict().items() if not k.startswith('outnorm')}
    official.update({'norm.weight': torch.ones(384), 'norm.bias': torch.zeros(384),
                     'head.weight': torch.randn(1000, 384), 'head.bias': torch.zeros(1000)})
    src, dst = tmp_path / 'vssd_micro_best.pth', tmp_path / 'converted.pth'
    torch.save({'model': official, 'model_ema': official}, src)
    tool('convert_checkpoint.py', src, dst)
    config = Path(__file__).resolve().parents[2] / 'configs/mmpretrain/vssd_m_8xb128_in1k.py'
    model = MODELS.build(Config.fromfile(str(config)).model)
    result = model.load_state_dict(torch.load(dst)['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_converter_refuses_what_it_cannot_convert_in_one_line(tmp_path, tool):
    """A file that is not an official classifier, or lacks the asked entry: one error line, no
    output file."""
    backbone = VSSD('micro').state_dict()
    mm_file, official = tmp_path / 'mm.pth', tmp_path / 'official.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in backbone.items()}}, mm_file)
    torch.save({'model': {**backbone, 'head.weight': torch.zeros(2, 384)}}, official)
    for src, args, message in (
            (mm_file, [], 'mm.pth is not an official VSSD classification checkpoint'),
            (official, ['--state-key', 'model_ema'], "has no 'model_ema' entry")):
        proc = tool('convert_checkpoint.py', src, tmp_path / 'out.pth', *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
        assert proc.stderr.strip().count('\n') == 0 and 'Traceback' not in proc.stderr
        assert not (tmp_path / 'out.pth').exists()
