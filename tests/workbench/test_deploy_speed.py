"""benchmarks/deploy_speed.py's measurement: every path and mode timed once per round, rows are
medians of their rounds, ratios to the release row; the release baseline runs on the model's own
parameters (its gradients reach them)."""
import statistics

import torch

from benchmarks.support.deploy_paths import ReleaseForward, measure
from vssd_mm.models import VSSD


def test_rows_are_medians_of_rounds_relative_to_the_release():
    rows = measure('micro', (64, 64), batch=1, paths=['release', 'eager'], warmup=0, iters=1,
                   rounds=3)
    assert sorted((r.path, r.mode) for r in rows) == [
        ('eager', 'inference'), ('eager', 'training'), ('release', 'inference'),
        ('release', 'training')]
    by_key = {(r.path, r.mode): r for r in rows}
    for r in rows:
        assert len(r.rounds) == 3 and r.ms == statistics.median(r.rounds) > 0
        assert r.ratio == r.ms / by_key['release', r.mode].ms
    assert by_key['release', 'inference'].ratio == 1.0


def test_release_forward_trains_the_models_parameters():
    torch.manual_seed(0)
    model = VSSD('micro', drop_path_rate=0., out_indices=(0, 1, 2, 3)).train()
    image = torch.randn(2, 3, 64, 64)
    sum(m.square().mean() for m in ReleaseForward(model, 'micro')(image)).backward()
    released = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    sum(m.square().mean() for m in model(image)).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(released[name], p.grad, rtol=1e-3, atol=1e-5, msg=name)
