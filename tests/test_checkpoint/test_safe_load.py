"""Weights-only loading admits what MMEngine stores and nothing else; every
failure names the file."""

import copy

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader

from mokd_mm.checkpoint import CheckpointLoadError, load_checkpoint
from tests.test_checkpoint import crafted


def test_mmengine_state_loads_as_plain_objects(tmp_path):
    hub = MessageHub.get_instance('safe_load_test')
    for value in (0.5, 1.5, 2.5):
        hub.update_scalar('train/loss', np.float64(value))
    hub.update_info('iter', 3)
    path = tmp_path / 'ckpt.pth'
    torch.save(
        dict(
            message_hub=hub.state_dict(),
            meta=dict(seed=np.int64(3), lr=np.float32(0.1), table=np.arange(6).reshape(2, 3)),
        ),
        path,
    )
    loaded = load_checkpoint(path)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert type(buffer) is HistoryBuffer and type(buffer._log_history) is np.ndarray
    assert buffer.mean() == 1.5 and buffer.statistics('max') == 2.5
    assert loaded['meta']['seed'] == 3 and loaded['meta']['lr'] == np.float32(0.1)
    assert np.array_equal(loaded['meta']['table'], np.arange(6).reshape(2, 3))
    copy.deepcopy(loaded)  # MessageHub's resume deep-copies
    # A loaded array pickles as a plain ndarray again (resumed runs save it).
    torch.save(loaded, tmp_path / 'again.pth')
    assert np.array_equal(
        load_checkpoint(tmp_path / 'again.pth')['meta']['table'], np.arange(6).reshape(2, 3)
    )


@pytest.mark.parametrize('name', sorted(crafted.CRAFTED))
def test_crafted_files_are_refused_with_the_file_named(tmp_path, name):
    marker = tmp_path / 'executed'
    path = crafted.write(tmp_path / 'crafted.pth', name, marker)
    with pytest.raises(
        CheckpointLoadError,
        match=r"checkpoint '.*crafted.pth' cannot be "
        'loaded safely',
    ):
        load_checkpoint(path)
    # MMEngine's loader of local paths (resume, load_from, teacher_ckpt) is ours.
    with pytest.raises(CheckpointLoadError, match='crafted.pth'):
        CheckpointLoader.load_checkpoint(path)
    assert not marker.exists()


def test_a_history_buffer_cannot_rebind_the_statistics(tmp_path):
    table = dict(HistoryBuffer._statistics_methods)
    path = tmp_path / 'buffer.pth'
    crafted.save_rebinding_history_buffer(path)
    unguarded = torch.load(path, weights_only=False)  # what mmengine alone would do
    assert HistoryBuffer._statistics_methods['mean'] is HistoryBuffer.max
    HistoryBuffer._statistics_methods.update(table)
    assert unguarded.keys()
    loaded = load_checkpoint(path)['message_hub']['log_scalars']['loss']
    assert HistoryBuffer._statistics_methods == table
    assert loaded.mean() == 2.0 and loaded.statistics('mean') == 2.0


def test_missing_empty_and_truncated_files_are_named(tmp_path):
    with pytest.raises(CheckpointLoadError, match="'.*absent.pth' does not exist"):
        load_checkpoint(tmp_path / 'absent.pth')
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(CheckpointLoadError, match="'.*empty.pth' is empty"):
        load_checkpoint(tmp_path / 'empty.pth')
    torch.save(dict(w=torch.ones(100)), tmp_path / 'full.pth')
    data = (tmp_path / 'full.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointLoadError, match="'.*cut.pth' cannot be loaded safely"):
        load_checkpoint(tmp_path / 'cut.pth')
