"""tools/test.py CONFIG URL: the file is downloaded once into torch's hub cache (loopback server,
no network) and evaluated; an official classification file is converted on the fly and gives the
accuracy of the manually converted file; an unreachable URL is one line."""
import re

import torch

from conftest import REPO, run_tool
from vssd_mm.models import VSSD

CONFIG = REPO / 'configs' / 'mmpretrain' / 'demo' / 'vssd_t_demo.py'


def _top1(proc):
    return float(re.findall(r'accuracy/top1: ([\d.]+)', proc.stdout + proc.stderr)[-1])


def _scores(path):
    """Class scores per validation image from a tools/test.py --out file, (images, classes)."""
    import pickle
    with open(path, 'rb') as f:
        return torch.stack([torch.as_tensor(p['pred_score']) for p in pickle.load(f)])


def test_official_classification_file_by_url(tmp_path, file_server):
    folder, base, stop = file_server
    run_tool('make_demo_data.py', 'imagenet', '--num-train', '4', '--num-val', '8', cwd=tmp_path)
    torch.manual_seed(0)
    official = {k: v for k, v in VSSD('tiny').state_dict().items() if not k.startswith('outnorm')}
    official.update({'norm.weight': torch.rand(512) + .5, 'norm.bias': torch.randn(512) * .1,
                     'head.weight': torch.randn(3, 512) * .2, 'head.bias': torch.randn(3)})
    ema = {k: v * 0 if k == 'head.bias' else v for k, v in official.items()}
    ema['head.weight'] = torch.randn(3, 512) * .2
    torch.save({'model': official, 'model_ema': ema, 'epoch': 299}, folder / 'vssd_tiny_demo.pth')
    url = f'{base}/vssd_tiny_demo.pth'

    by_url = run_tool('test.py', CONFIG, url, '--work-dir', 'by_url', '--out', 'by_url.pkl',
                      cwd=tmp_path)
    log = by_url.stdout + by_url.stderr
    assert f'Downloading {url}' in log
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'vssd_tiny_demo.pth'
    assert cached.is_file()
    converted = tmp_path / 'by_url' / 'converted' / 'vssd_tiny_demo_model_mmpretrain.pth'
    assert converted.is_file() and "evaluating its 'model' weights" in log

    run_tool('convert_checkpoint.py', folder / 'vssd_tiny_demo.pth', 'manual.pth', cwd=tmp_path)
    manual = run_tool('test.py', CONFIG, 'manual.pth', '--work-dir', 'manual', '--out',
                      'manual.pkl', cwd=tmp_path)
    assert _top1(by_url) == _top1(manual)
    scores = _scores(tmp_path / 'by_url.pkl')
    assert scores.shape == (24, 3)
    torch.testing.assert_close(scores, _scores(tmp_path / 'manual.pkl'))

    stop()  # from the cache now; the EMA weights on request
    ema_run = run_tool('test.py', CONFIG, url, '--work-dir', 'ema', '--state-key', 'model_ema',
                       '--out', 'ema.pkl', cwd=tmp_path)
    assert 'Downloading' not in ema_run.stdout + ema_run.stderr
    assert not torch.allclose(_scores(tmp_path / 'ema.pkl'), scores)  # other weights, other scores
    assert (tmp_path / 'ema' / 'converted' / 'vssd_tiny_demo_model_ema_mmpretrain.pth').is_file()

    missing = run_tool('test.py', CONFIG, f'{base}/vssd_tiny_other.pth', '--work-dir', 'missing',
                       cwd=tmp_path, check=False)
    assert missing.returncode != 0 and 'Traceback' not in missing.stderr, missing.stderr[-2000:]
    error = [line for line in missing.stderr.splitlines() if line.startswith('error:')]
    assert len(error) == 1 and f'cannot download {base}/vssd_tiny_other.pth' in error[0]
    assert 'pass your copy as CHECKPOINT' in error[0]
    assert not (tmp_path / 'missing').exists()
