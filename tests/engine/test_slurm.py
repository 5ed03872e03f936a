"""tools/slurm_train.sh and slurm_test.sh as OpenMMLab's (arguments, GPUS / GPUS_PER_NODE /
CPUS_PER_TASK / SRUN_ARGS), checked with a stand-in srun on PATH; and the --launcher slurm path
on CPU: two srun tasks train the classification demo config as one gloo process group."""
import collections
import json
import os
import re
import socket
import sys

import pytest
import torch

from conftest import FIXTURES, REPO, run_tool


@pytest.fixture
def fake_srun(tmp_path):
    """(environment with the stand-in srun first on PATH, the file it writes its arguments to)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(f'#!{sys.executable}\n' + (FIXTURES / 'fake_srun.py').read_text())
    srun.chmod(0o755)
    log = tmp_path / 'srun_args.txt'
    return {'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', 'FAKE_SRUN_LOG': str(log)}, log


def test_slurm_scripts_pass_the_conventional_arguments(fake_srun):
    env, log = fake_srun
    run_tool('slurm_train.sh', 'gpu_part', 'vssd_det', 'configs/x.py', 'work_dirs/x',
             '--cfg-options', 'a=1', env={**env, 'GPUS': '16', 'SRUN_ARGS': '--quotatype=auto'})
    args = log.read_text().splitlines()
    python = args.index(sys.executable)
    assert args[:python] == ['-p', 'gpu_part', '--job-name=vssd_det', '--gres=gpu:8',
                             '--ntasks=16', '--ntasks-per-node=8', '--cpus-per-task=5',
                             '--kill-on-bad-exit=1', '--quotatype=auto']
    assert args[python + 1:] == ['-u', str(REPO / 'tools' / 'train.py'), 'configs/x.py',
                                 '--work-dir', 'work_dirs/x', '--launcher', 'slurm',
                                 '--cfg-options', 'a=1']
    run_tool('slurm_test.sh', 'p', 'j', 'configs/x.py', 'epoch_12.pth', '--tta',
             env={**env, 'GPUS': '2', 'CPUS_PER_TASK': '3'})
    args = log.read_text().splitlines()
    assert '--gres=gpu:2' in args and '--ntasks=2' in args and '--cpus-per-task=3' in args
    assert args[-5:] == ['configs/x.py', 'epoch_12.pth', '--launcher', 'slurm', '--tta']


@pytest.mark.parametrize('script, args, env, message', [
    ('slurm_train.sh', ['p', 'j', 'c.py'], {}, 'usage: '),
    ('slurm_test.sh', ['p', 'j'], {}, 'usage: '),
    ('slurm_train.sh', ['p', 'j', 'c.py', 'w'], {'GPUS': 'eight'},
     "GPUS must be a positive whole number, got 'eight'"),
    ('slurm_train.sh', ['p', 'j', 'c.py', 'w'], {'GPUS_PER_NODE': '0'},
     "GPUS_PER_NODE must be a positive whole number, got '0'"),
])
def test_slurm_script_mistakes_are_one_line(fake_srun, script, args, env, message):
    proc = run_tool(script, *args, env={**fake_srun[0], **env}, check=False)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not fake_srun[1].exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (gloo) path of --launcher slurm')
def test_two_slurm_tasks_train_as_one_process_group_on_cpu(fake_srun, tmp_path):
    env, _ = fake_srun
    run_tool('make_demo_data.py', 'imagenet', '--num-train', '4', '--num-val', '2', cwd=tmp_path)
    config = tmp_path / 'demo_slurm.py'
    config.write_text(
        f"_base_ = '{REPO / 'configs/mmpretrain/demo/vssd_t_demo.py'}'\n"
        "custom_imports = dict(imports=['vssd_mm', 'rank_fingerprint'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='ParameterFingerprintHook')]\n"
        "train_dataloader = dict(batch_size=2)\n"
        "train_cfg = dict(max_epochs=1, val_interval=100)\n"
        "param_scheduler = []\n")
    proc = run_tool('slurm_train.sh', 'cpu', 'demo', config, 'work', cwd=tmp_path,
                    env={**env, 'FAKE_SRUN_RUN': '1', 'GPUS': '2',
                         'MASTER_PORT': str(_free_port())})
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[-3000:]
    prints = [json.loads((tmp_path / 'work' / f'fingerprint_rank{r}.json').read_text())
              for r in (0, 1)]
    assert [p['world_size'] for p in prints] == [2, 2]
    assert prints[0]['iter'] == prints[1]['iter'] > 0
    assert prints[0]['sums'] == prints[1]['sums']  # one model, trained in step


BUILD_MARKER = '''
import os
from mmengine.registry import MODELS
from toy_regression import ToyRegressor


@MODELS.register_module()
class MarkedToyRegressor(ToyRegressor):
    """The toy model; each build appends this process's id to $MODEL_BUILDS."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with open(os.environ['MODEL_BUILDS'], 'a') as f:
            f.write(f'{os.getpid()}\\n')
'''


@pytest.fixture
def two_toy_tasks(fake_srun, tmp_path):
    """(run: args -> process, file of model builds): tools/slurm_train.sh with the stand-in srun
    running two tasks of the toy config as one gloo process group."""
    env, _ = fake_srun
    (tmp_path / 'build_marker.py').write_text(BUILD_MARKER)
    config = tmp_path / 'toy_two_tasks.py'
    config.write_text(f"_base_ = '{FIXTURES / 'toy_regression_config.py'}'\n"
                      "custom_imports = dict(imports=['build_marker'], allow_failed_imports=False)\n"
                      "model = dict(type='MarkedToyRegressor')\n"
                      "train_cfg = dict(max_epochs=1)\n")
    builds = tmp_path / 'builds.txt'
    env = {**env, 'FAKE_SRUN_RUN': '1', 'GPUS': '2', 'MODEL_BUILDS': str(builds),
           'PYTHONPATH': os.pathsep.join(filter(None, [str(tmp_path),
                                                       os.environ.get('PYTHONPATH')]))}

    def run(*args):
        return run_tool('slurm_train.sh', 'cpu', 'toy', config, 'work', *args, cwd=tmp_path,
                        env={**env, 'MASTER_PORT': str(_free_port())}, check=False,
                        timeout=240)
    return run, builds


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (gloo) path of --launcher slurm')
def test_two_tasks_check_the_data_and_build_the_extra_model_once(two_toy_tasks):
    """The data check and the model build before the Runner run in rank 0 alone (before: in
    every rank, before the process group existed): 3 builds, 2 of them the Runners'."""
    run, builds = two_toy_tasks
    proc = run()
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed training: True' in log
    assert len(re.findall(r'data check: \d+ checks of \d+ items passed', log)) == 1
    per_process = collections.Counter(builds.read_text().split())
    assert sorted(per_process.values()) == [1, 2]  # rank 0: the check's and the Runner's


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (gloo) path of --launcher slurm')
def test_a_failed_check_in_rank_zero_stops_every_task_with_one_error_line(two_toy_tasks):
    run, builds = two_toy_tasks
    proc = run('--cfg-options', 'model.type=NoSuchModel')
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]  # before: one per task
    assert errors[0].startswith("error: the config's model cannot be built: KeyError: "
                                "NoSuchModel is not in the mmengine::model registry")
    assert 'Traceback' not in proc.stderr
    assert not builds.exists()
