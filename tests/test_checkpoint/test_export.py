import pytest
import torch

from mokd_mm.checkpoint import extract_student


def test_extract_student_keeps_the_student_and_the_dataset_meta():
    ckpt = dict(
        state_dict={'student.w': torch.ones(1), 'distill_losses.c': torch.zeros(1)},
        meta=dict(dataset_meta=dict(classes=('a', 'b')), seed=1),
    )
    out = extract_student(ckpt)
    assert list(out['state_dict']) == ['w']
    assert out['meta'] == dict(dataset_meta=dict(classes=('a', 'b')))
    with pytest.raises(KeyError, match='x.pth has no "student.\\*" weights'):
        extract_student(dict(state_dict={'w': torch.ones(1)}), source='x.pth')
    with pytest.raises(KeyError, match='y.pth has no "state_dict"'):
        extract_student([1, 2], source='y.pth')
