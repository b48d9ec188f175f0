"""Command-line conveniences of tools/train.py and tools/test.py."""

import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from tests.conftest import MOKD_CFG, REPO, STUDENT_CFG
from tools.cli import enable_amp, enable_visualization


@pytest.mark.parametrize('flag', ['--local-rank', '--local_rank'])
def test_both_local_rank_spellings_are_accepted(flag):
    code = (
        'import sys; sys.argv = ["train.py", "cfg.py", "%s", "3"]; '
        'sys.path.insert(0, "tools"); import train; print(train.parse_args().local_rank)' % flag
    )
    env = {'PYTHONPATH': REPO, 'PATH': '/usr/bin:/bin'}
    out = subprocess.run(
        [sys.executable, '-c', code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == '3'


def test_amp_flag_gives_a_float16_mokd_wrapper():
    """Like mmdet's train.py, --amp asks for AmpOptimWrapper; the MoKD
    constructor builds a float16 MoKDOptimWrapper from it."""
    from mmengine.optim import build_optim_wrapper

    from tests.conftest import build_in_scope

    cfg = Config.fromfile(MOKD_CFG)
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    model = cfg.model.to_dict()
    model.update(teacher_ckpt=None, data_preprocessor=cfg.data_preprocessor.to_dict())
    wrapper = build_optim_wrapper(build_in_scope(model), cfg.optim_wrapper)
    assert type(wrapper).__name__ == 'MoKDOptimWrapper'
    assert wrapper.cast_dtype == torch.float16 and wrapper.loss_scaler is not None
    cfg = Config.fromfile(MOKD_CFG)
    cfg.optim_wrapper.dtype = 'bfloat16'
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'MoKDOptimWrapper'  # already mixed precision
    plain = Config.fromfile(STUDENT_CFG)
    enable_amp(plain)
    assert plain.optim_wrapper.type == 'AmpOptimWrapper'


def test_show_dir_for_mmpretrain_and_missing_hook():
    cfg = Config.fromfile(STUDENT_CFG)
    enable_visualization(cfg, False, 'shows', 0.5)
    assert (
        cfg.default_hooks.visualization.enable
        and cfg.default_hooks.visualization.out_dir == 'shows'
    )
    del cfg.default_hooks['visualization']
    with pytest.raises(KeyError, match='default_hooks.visualization'):
        enable_visualization(cfg, True, None, 0.5)
