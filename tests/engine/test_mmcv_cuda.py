"""mmcv's CUDA ops: the installer's decisions, the kept wheels, and the check before a GPU run."""
import pytest
import torch

from conftest import REPO, tool_main
from vssd_mm.engine.mmcv_cuda import (DEFAULT_ARCHS, REQUIRED_KERNELS, CudaOpsPlan, MmcvBuild,
                                      build_id, build_misfit, build_of_id, cached_wheels, main,
                                      plan_cuda_ops, plan_from_line, required_kernels_in)


@pytest.mark.parametrize('torch_cuda, capabilities, switch, arch_list, line', [
    # no GPU, no switch: whatever loads (a CPU machine's install is unchanged)
    ('13.0', [], None, None, 'any'),
    (None, [], None, None, 'any'),
    (None, [(9, 0)], None, None, 'any'),           # CPU-only torch on a GPU machine
    # a CUDA torch that sees GPUs: their archs
    ('13.0', [(9, 0)], None, None, 'cuda 13.0 9.0'),
    ('13.0', [(8, 6), (9, 0), (8, 6)], '', None, 'cuda 13.0 8.6;9.0'),
    # TORCH_CUDA_ARCH_LIST wins over the GPUs
    ('13.0', [(9, 0)], None, '8.0 9.0+PTX', 'cuda 13.0 8.0;9.0+PTX'),
    # forced without a GPU: the default list
    ('13.0', [], '1', None, f'cuda 13.0 {";".join(DEFAULT_ARCHS)}'),
    ('13.0', [], '1', '8.0;9.0', 'cuda 13.0 8.0;9.0'),
    # forced CPU-only, even with a GPU
    ('13.0', [(9, 0)], '0', None, 'cpu'),
])
def test_the_plan_follows_torch_the_gpus_and_the_switch(torch_cuda, capabilities, switch,
                                                        arch_list, line):
    plan = plan_cuda_ops(torch_cuda, capabilities, switch, arch_list)
    assert plan.line() == line
    assert plan_from_line(line).line() == line


@pytest.mark.parametrize('torch_cuda, switch, arch_list, message', [
    ('13.0', 'yes', None, "VSSD_MM_CUDA_OPS='yes': use 1"),
    (None, '1', None, 'torch is a CPU-only build'),
    ('13.0', '1', 'sm_90', "entry 'sm_90' is not MAJOR.MINOR"),
    ('13.0', '1', ' ; ', 'TORCH_CUDA_ARCH_LIST is set but empty'),
])
def test_bad_switches_are_named(torch_cuda, switch, arch_list, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(')):
        plan_cuda_ops(torch_cuda, [], switch, arch_list)


CUDA_90 = plan_cuda_ops('13.0', [(9, 0)], None, None)
RUN_TIME = CudaOpsPlan(True, False, '13.0')  # the check before a run: no archs, no cuobjdump
ALL = frozenset(REQUIRED_KERNELS)


@pytest.mark.parametrize('build, plan, reason', [
    (MmcvBuild('2.1.0', None), CUDA_90, 'CPU-only'),
    (MmcvBuild('2.1.0', '12.8', frozenset({90}), kernels=ALL), CUDA_90,
     'compiled with CUDA 12.8, torch uses CUDA 13.0'),
    (MmcvBuild('2.1.0', '13.0', frozenset({80}), kernels=ALL), CUDA_90, 'no device code for 9.0'),
    (MmcvBuild('2.1.0', '13.0', frozenset({90}), kernels=frozenset({'NMS'})), CUDA_90,
     'lacks the CUDA kernels of RoIAlign'),
    (MmcvBuild('2.1.0', '13.0', frozenset({90}), kernels=ALL),
     plan_cuda_ops('13.0', [], '1', '9.0+PTX'), 'no device code for 9.0+PTX'),
    (MmcvBuild('2.1.0', '13.0', frozenset({90}), kernels=ALL), CudaOpsPlan(False, True),
     'VSSD_MM_CUDA_OPS=0 asks for CPU-only ops'),
    (MmcvBuild('2.1.0', '13.0'), CUDA_90, 'its device code could not be read (no cuobjdump)'),
    (MmcvBuild('2.1.0', '12.8'), RUN_TIME, 'compiled with CUDA 12.8, torch uses CUDA 13.0'),
])
def test_a_build_that_cannot_serve_says_why(build, plan, reason):
    assert reason in build_misfit(build, plan)


@pytest.mark.parametrize('build, plan', [
    (MmcvBuild('2.1.0', '13.0', frozenset({80, 90}), kernels=ALL), CUDA_90),  # a superset
    (MmcvBuild('2.1.0', '13.0'), RUN_TIME),  # device code not read: the CUDA version decides
    (MmcvBuild('2.1.0', '13.1', frozenset({90}), frozenset({90}), ALL),
     plan_cuda_ops('13.0', [], '1', '9.0+PTX')),                             # same major
    (MmcvBuild('2.1.0', None), CudaOpsPlan(False, False)),
    (MmcvBuild('2.1.0', '13.0', frozenset({90}), kernels=ALL), CudaOpsPlan(False, False)),
    (MmcvBuild('2.1.0', None), CudaOpsPlan(False, True)),
])
def test_a_build_that_serves_is_kept(build, plan):
    assert build_misfit(build, plan) is None


def test_kept_wheels_never_stand_in_for_another_kind_of_build(tmp_path):
    wheel = 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    for folder in ('cpu', 'cu13.0-sm80-sm90', 'cu13.0-sm80-sm86-sm89-sm90+ptx', 'cu12.8-sm90',
                   'cu13.0-sm90'):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / wheel).write_bytes(b'')
    assert build_id(CUDA_90) == 'cu13.0-sm90'
    names = [path.parent.name for path in cached_wheels(CUDA_90, tmp_path)]
    # its own folder first, then the supersets; never the CPU-only or the CUDA 12 build
    assert names == ['cu13.0-sm90', 'cu13.0-sm80-sm86-sm89-sm90+ptx', 'cu13.0-sm80-sm90']
    forced_cpu = [path.parent.name for path in cached_wheels(CudaOpsPlan(False, True), tmp_path)]
    assert forced_cpu == ['cpu']
    ptx = plan_cuda_ops('13.0', [], '1', None)
    assert build_id(ptx) == 'cu13.0-sm80-sm86-sm89-sm90+ptx'
    assert build_of_id(build_id(ptx)).ptx == {90}
    assert build_of_id('not-a-build') is None


def test_the_installers_questions_on_the_command_line(capsys):
    assert main(['build-id', 'cuda 13.0 8.0;9.0']) == 0
    assert capsys.readouterr().out.strip() == 'cu13.0-sm80-sm90'
    # this machine's mmcv against a CUDA plan: refused with the reason, exit 1
    assert main(['accepts', 'cuda 13.0 9.0']) == (0 if torch.cuda.is_available() else 1)
    if not torch.cuda.is_available():
        assert 'CPU-only' in capsys.readouterr().out
    assert main(['accepts', 'any']) == 0
    assert main(['plan', 'extra']) == 2
    assert main(['build-id', 'gpu please']) == 2
    assert "not a plan line: 'gpu please'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason='simulates a GPU on a CPU-only mmcv')
def test_train_on_a_gpu_with_cpu_only_mmcv_ops_is_one_line(tmp_path, monkeypatch):
    """Mask R-CNN (RoIAlign, NMS) on a 'GPU' with this machine's CPU-only mmcv: one error line
    naming mmcv, what its ops lack and the rebuild command, before anything is written."""
    data = tmp_path / 'data' / 'coco_demo'  # the demo config's layout (the files are not read)
    (data / 'annotations').mkdir(parents=True)
    for split in ('train2017', 'val2017'):
        (data / 'annotations' / f'instances_{split}.json').write_text('{}')
        (data / split).mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr('vssd_mm.engine.mmcv_cuda.runs_on_cuda', lambda: True)
    work = tmp_path / 'work'
    with pytest.raises(SystemExit) as exit_:
        tool_main('train.py')([str(REPO / 'configs/mmdet/demo/mask_rcnn_vssd_t_demo.py'),
                               '--work-dir', str(work), '--skip-data-check'])
    import mmcv  # either stack's: mmcv 2.1.0 or onedl-mmcv 2.3.6
    message = str(exit_.value)
    assert message.startswith(f'error: mmcv {mmcv.__version__} at ') and '\n' not in message
    assert 'its ops are CPU-only (compiled without CUDA)' in message
    assert '(RoIAlign, nms)' in message
    assert 'VSSD_MM_CUDA_OPS=1 bash tools/install.sh' in message
    assert not work.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='reports this CPU machine\'s mmcv')
def test_check_mmcv_cuda_reports_and_fails_only_where_cuda_ops_are_wanted(capsys, monkeypatch):
    check = tool_main('check_mmcv_cuda.py')
    monkeypatch.delenv('VSSD_MM_CUDA_OPS', raising=False)
    assert check([]) == 0
    out = capsys.readouterr().out
    assert 'ops compiled with CUDA: no (CPU-only ops)' in out
    assert 'wants any ops (no GPU visible): ok' in out
    monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', '9.0')
    assert check(['--require-cuda']) == 1
    assert 'wants CUDA ops for 9.0: NOT served, its ops are CPU-only' in capsys.readouterr().out


def test_kernels_are_found_by_their_mangled_names_not_by_file_name_prefixes():
    # as cuobjdump --dump-elf-symbols prints them: a static kernel gets its file's prefix
    nms = 'STT_FUNC STB_LOCAL STO_ENTRY _ZN37_INTERNAL_5c1f_11_nms_cuda_cu_a1b2L8nms_cudaEiffPKfPy'
    gather = ('STT_FUNC STB_LOCAL STO_ENTRY '
              '_ZN37_INTERNAL_5c1f_11_nms_cuda_cu_a1b2L21gather_keep_from_maskEPbPKyi')
    roi = 'STT_FUNC STB_GLOBAL STO_ENTRY _Z29roi_align_forward_cuda_kernelIfEviPKT_S2_PS0_'
    assert required_kernels_in('\n'.join([nms, roi])) == {'NMS', 'RoIAlign'}
    assert required_kernels_in(gather) == frozenset()  # same file, not the kernel


@pytest.fixture(scope='module')
def mask_rcnn():
    from mmengine.config import Config
    from vssd_mm.configs import config_path
    from vssd_mm.engine.preflight import build_model_checked
    return build_model_checked(Config.fromfile(str(config_path(
        'mmdet/demo/mask_rcnn_vssd_t_demo.py'))))


@pytest.mark.parametrize('compiled, stops', [(None, True), ('12.8', True), ('13.0', False)])
def test_the_check_before_a_gpu_run_reads_the_cuda_version(mask_rcnn, monkeypatch, compiled,
                                                          stops):
    """Mask R-CNN (RoIAlign, nms) headed for a 'GPU', mmcv's report simulated."""
    import vssd_mm.engine.mmcv_cuda as mmcv_cuda
    model = mask_rcnn
    monkeypatch.setattr(mmcv_cuda, 'runs_on_cuda', lambda: True)
    monkeypatch.setattr(torch.version, 'cuda', '13.0')
    monkeypatch.setattr(mmcv_cuda, 'read_mmcv_build', lambda: MmcvBuild('2.1.0', compiled))
    if stops:
        with pytest.raises(mmcv_cuda.MmcvCudaOpsError, match='on the GPU. Rebuild them'):
            mmcv_cuda.check_mmcv_cuda_ops(model)
    else:
        mmcv_cuda.check_mmcv_cuda_ops(model)
