"""Every checkpoint the package writes carries the SHA-256 of its payload;
every load checks it. Fault injection: a flipped tensor, a flipped digest,
a truncated file, an empty file; files without a digest load as before."""

import io
import zipfile

import pytest
import torch

from mokd_mm.checkpoint import CheckpointLoadError, load_checkpoint, save_checkpoint_atomic
from mokd_mm.checkpoint.digest import MARK, seal, verify


def _checkpoint():
    torch.manual_seed(0)
    return dict(state_dict={'conv.weight': torch.randn(64, 32, 3, 3), 'fc.bias': torch.randn(8)})


def _tensor_offset(path, name='archive/data/0'):
    """Where the bytes of a tensor's storage start in the file."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(name.split('/', 1)[1]))
        header = info.header_offset
    with open(path, 'rb') as f:
        f.seek(header + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), 'little') for _ in range(2))
    return header + 30 + name_len + extra_len


def _flip(path, offset, count=16):
    data = bytearray(path.read_bytes())
    for i in range(offset, offset + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_written_checkpoint_carries_its_digest_and_loads(tmp_path):
    path = tmp_path / 'ckpt.pth'
    save_checkpoint_atomic(_checkpoint(), str(path))
    assert zipfile.ZipFile(path).comment.startswith(MARK)
    assert verify(str(path)) is True
    loaded = load_checkpoint(path)
    assert torch.equal(loaded['state_dict']['fc.bias'], _checkpoint()['state_dict']['fc.bias'])
    # torch alone reads it too (the digest sits in the zip comment).
    assert torch.load(path, weights_only=True)['state_dict'].keys() == loaded['state_dict'].keys()


@pytest.mark.parametrize('where', ['tensor', 'digest'])
def test_a_flipped_byte_is_reported_as_corrupt(tmp_path, where):
    path = tmp_path / 'ckpt.pth'
    save_checkpoint_atomic(_checkpoint(), str(path))
    offset = _tensor_offset(path) + 1000 if where == 'tensor' else path.stat().st_size - 10
    _flip(path, offset, 16 if where == 'tensor' else 4)
    if where == 'tensor':  # torch alone would load the damaged weights silently
        torch.load(path, weights_only=True)
    with pytest.raises(CheckpointLoadError, match=f"checkpoint '{path}' is corrupt"):
        load_checkpoint(path)


def test_truncated_and_empty_files_are_named(tmp_path):
    path = tmp_path / 'ckpt.pth'
    save_checkpoint_atomic(_checkpoint(), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointLoadError, match=f"checkpoint '{path}' cannot be loaded"):
        load_checkpoint(path)
    path.write_bytes(b'')
    with pytest.raises(CheckpointLoadError, match=f"checkpoint '{path}' is empty"):
        load_checkpoint(path)


def test_files_without_a_digest_still_load(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save(_checkpoint(), path)  # as MMEngine's own or a published file
    assert verify(str(path)) is None
    assert 'fc.bias' in load_checkpoint(path)['state_dict']


def test_seal_leaves_other_data_alone():
    assert seal(b'not a zip') == [b'not a zip']
    buffer = io.BytesIO()
    torch.save({}, buffer)
    sealed = b''.join(seal(buffer.getvalue()))
    assert seal(sealed) == [sealed]  # a comment already: left as it is
