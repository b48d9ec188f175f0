"""A distiller loads a checkpoint of its student alone into the student,
and refuses one that would leave the student partly loaded, naming the
file and the keys (mmengine's own checkpoint loading, as ``load_from`` and
``tools/test.py`` use it)."""

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint

from tests.conftest import MOKD_CFG, STUDENT_CFG, build_in_scope


def _distiller(**overrides):
    cfg = Config.fromfile(MOKD_CFG)
    model = cfg.model.to_dict()
    model.update(teacher_ckpt=None, data_preprocessor=cfg.data_preprocessor.to_dict())
    model['student'].update(overrides.pop('student', {}))
    model.update(overrides)
    torch.manual_seed(0)
    return build_in_scope(model)


@pytest.fixture()
def student_file(tmp_path):
    torch.manual_seed(5)
    student = build_in_scope(Config.fromfile(STUDENT_CFG).model)
    path = str(tmp_path / 'student.pth')
    torch.save(dict(state_dict=student.state_dict()), path)
    return path, student.state_dict()


def _assert_student_equals(distiller, state):
    for key, value in state.items():
        assert torch.equal(distiller.student.state_dict()[key], value), key


def test_a_checkpoint_of_the_student_alone_goes_into_the_student(student_file):
    path, state = student_file
    distiller = _distiller()
    load_checkpoint(distiller, path, strict=True)  # no missing key: the student is complete
    _assert_student_equals(distiller, state)


def test_the_student_init_cfg_loads_its_own_checkpoint(student_file):
    path, state = student_file
    distiller = _distiller(student=dict(init_cfg=dict(type='Pretrained', checkpoint=path)))
    distiller.init_weights()
    _assert_student_equals(distiller, state)


def test_a_partial_student_is_refused_with_the_file_and_keys(student_file, tmp_path):
    _, state = student_file
    state = dict(state)
    state.pop('head.fc.weight')
    state['neck.extra.weight'] = torch.zeros(1)
    partial = str(tmp_path / 'partial.pth')
    torch.save(dict(state_dict=state), partial)
    with pytest.raises(KeyError) as err:
        load_checkpoint(_distiller(), partial)
    message = str(err.value)
    assert f'{partial} is a checkpoint of the student alone' in message
    assert "missing (first: ['head.fc.weight'])" in message
    assert "unexpected (first: ['neck.extra.weight'])" in message
    assert 'allow_partial_load=True' in message
    # A distiller checkpoint missing a student weight is refused the same way.
    distiller_state = {f'student.{k}': v for k, v in state.items() if k != 'neck.extra.weight'}
    partial_distiller = str(tmp_path / 'partial_distiller.pth')
    torch.save(dict(state_dict=distiller_state), partial_distiller)
    with pytest.raises(KeyError, match='is a MoKDDistiller checkpoint but would load only part'):
        load_checkpoint(_distiller(), partial_distiller)
    # Nothing of the student at all.
    torch.save(dict(state_dict={'fc.weight': torch.zeros(1)}), partial)
    with pytest.raises(KeyError, match='neither a MoKDDistiller checkpoint nor one of its student'):
        load_checkpoint(_distiller(), partial)
    # The flag loads what matches.
    torch.save(dict(state_dict=state), partial)
    distiller = _distiller(allow_partial_load=True)
    load_checkpoint(distiller, partial)
    weight = 'backbone.conv1.weight'
    assert torch.equal(distiller.student.state_dict()[weight], state[weight])
