import collections
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from mokd_mm.utils import extract_student, save_checkpoint_atomic


def test_mmengine_meta_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('ckpt_compat')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('iter', 3)
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict(), meta=dict(seed=np.int64(3))), path)
    loaded = torch.load(path, weights_only=True)
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == 0.5


class _Reach:
    """Pickles as getattr(owner, name)."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


@pytest.mark.parametrize('owner,name', [(collections.OrderedDict, 'fromkeys'),
                                        (HistoryBuffer, '_set_default_statistics')])
def test_getattr_is_limited_to_history_buffer_methods(tmp_path, owner, name):
    path = tmp_path / 'crafted.pth'
    with open(path, 'wb') as f:
        pickle.dump(_Reach(owner, name), f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        torch.load(path, weights_only=True)


def test_atomic_save_keeps_the_old_file_when_saving_fails(tmp_path):
    path = tmp_path / 'model.pth'
    save_checkpoint_atomic(dict(a=torch.ones(2)), str(path))

    class Unpicklable:

        def __reduce__(self):
            raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        save_checkpoint_atomic(dict(a=Unpicklable()), str(path))
    assert torch.equal(torch.load(path)['a'], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ['model.pth']


def test_mmengine_checkpoint_writes_are_atomic(tmp_path):
    from mmengine.fileio import get_file_backend
    from mmengine.runner.checkpoint import save_checkpoint

    from mokd_mm.utils import AtomicLocalBackend
    path = tmp_path / 'iter_1.pth'
    assert isinstance(get_file_backend(str(path)), AtomicLocalBackend)
    save_checkpoint(dict(state_dict=dict(w=torch.ones(1))), str(path))
    backend = get_file_backend(str(path))
    with pytest.raises(TypeError):
        backend.put('not bytes', str(path))  # fails while writing
    assert torch.equal(torch.load(path)['state_dict']['w'], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ['iter_1.pth']


def test_extract_student():
    ckpt = dict(state_dict={'student.w': torch.ones(1), 'distill_losses.c': torch.zeros(1)},
                meta=dict(dataset_meta=dict(classes=('a', 'b')), seed=1))
    out = extract_student(ckpt)
    assert list(out['state_dict']) == ['w'] and out['meta'] == dict(dataset_meta=dict(classes=('a', 'b')))
    with pytest.raises(KeyError, match='not a MoKDDistiller checkpoint'):
        extract_student(dict(state_dict={'w': torch.ones(1)}), source='x.pth')
