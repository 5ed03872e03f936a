"""The README's demo command runs and prints what it promises."""


def test_demo_builds_through_every_registry_and_matches_paper_counts(tool):
    proc = tool('demo.py', '--archs', 'micro', '--device', 'cpu', timeout=300)
    out = proc.stdout
    for library in ('mmdet', 'mmseg', 'mmpretrain'):
        assert f'{library}' in out and 'vssd_mm.models.backbones.vssd.VSSD' in out
    micro = next(line for line in out.splitlines() if line.startswith('micro'))
    assert '13,512,964' in micro and '14M' in micro and '(384, 16, 22)' in micro
