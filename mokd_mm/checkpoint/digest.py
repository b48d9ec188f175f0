"""A SHA-256 digest of a checkpoint's payload, carried by the file itself.

torch writes checkpoints as zip archives and does not verify the archive's
CRCs when it reads one, so a flipped bit inside a tensor loads silently.
Every checkpoint this package writes carries the SHA-256 of its payload in
the archive's comment (the comment field of the zip's end-of-central-
directory record, which zip readers, torch's included, skip); every load
this package makes recomputes it. Files without such a comment (MMEngine's
own, published checkpoints) load as before.

The payload is the file as ``torch.save`` wrote it, i.e. with an empty
comment: the digest covers every byte except the comment it is written in.
"""

import hashlib
import os
from typing import List, Optional

__all__ = ['seal', 'verify']

MARK = b'mokd-sha256:'
_EOCD = b'PK\x05\x06'
_EOCD_SIZE = 22  # the end-of-central-directory record without its comment
_COMMENT_SIZE = _EOCD_SIZE - 2  # offset of the comment-length field
_CHUNK = 1 << 22


def seal(payload: bytes) -> List[bytes]:
    """``payload`` with its digest in the zip comment, as chunks to write
    one after the other (no copy of the payload); other data (not a zip
    archive, or one that already has a comment) comes back unchanged."""
    view = memoryview(payload)
    if len(payload) < _EOCD_SIZE or bytes(view[-_EOCD_SIZE : -_EOCD_SIZE + 4]) != _EOCD:
        return [payload]
    if bytes(view[-2:]) != b'\x00\x00':  # a comment already
        return [payload]
    comment = MARK + hashlib.sha256(view).hexdigest().encode()
    return [view[:-2], len(comment).to_bytes(2, 'little') + comment]


def _recorded(path: str) -> Optional[bytes]:
    """The hex digest a file carries, or None."""
    size = os.path.getsize(path)
    tail = len(MARK) + 64
    if size < _EOCD_SIZE + tail:
        return None
    with open(path, 'rb') as f:
        f.seek(size - _EOCD_SIZE - tail)
        end = f.read()
    comment = end[_EOCD_SIZE:]
    if (
        end[:4] != _EOCD
        or int.from_bytes(end[_COMMENT_SIZE:_EOCD_SIZE], 'little') != tail
        or not comment.startswith(MARK)
    ):
        return None
    return comment[len(MARK) :]


def verify(path: str) -> Optional[bool]:
    """Check the file at ``path`` against the digest it carries.

    Returns:
        bool | None: None when the file carries no digest, else whether its
        payload matches it.
    """
    recorded = _recorded(path)
    if recorded is None:
        return None
    sha = hashlib.sha256()
    remaining = os.path.getsize(path) - len(MARK) - 64 - 2
    with open(path, 'rb') as f:
        while remaining > 0:
            chunk = f.read(min(_CHUNK, remaining))
            if not chunk:
                break
            sha.update(chunk)
            remaining -= len(chunk)
    sha.update(b'\x00\x00')  # the payload's empty comment
    return sha.hexdigest().encode() == recorded
