"""Crafted checkpoint files: each tries something weights-only loading must
refuse (or neutralise), written with torch.save through objects whose
pickled form is the attack."""

import collections
import os

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


class Reduce:
    """Pickles as ``func(*args)``, with ``state`` applied by BUILD."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        if self.state is None:
            return self.func, self.args
        return self.func, self.args, self.state


def _reconstruct():
    core = getattr(np, '_core', None) or np.core
    return core.multiarray._reconstruct


def object_array():
    """An object array over attacker bytes (an address to dereference)."""
    dtype = Reduce(np.dtype, ('O8', False, True), (3, '|', None, None, None, -1, -1, 63))
    return Reduce(_reconstruct(), (np.ndarray, (0,), b'b'), (1, (1,), dtype, False, b'\x41' * 8))


def rebuilt_dtype():
    """A float dtype turned structured (with an object field) by its state."""
    inner = Reduce(np.dtype, ('O8', False, True), (3, '|', None, None, None, -1, -1, 63))
    dtype = Reduce(
        np.dtype, ('f8', False, True), (3, '|', None, ('a',), {'a': (inner, 0)}, 8, 1, 63)
    )
    return Reduce(_reconstruct(), (np.ndarray, (0,), b'b'), (1, (1,), dtype, False, b'\0' * 8))


def short_array():
    """A float array whose bytes do not fill its shape."""
    dtype = Reduce(np.dtype, ('f8', False, True), (3, '<', None, None, None, -1, -1, 0))
    return Reduce(_reconstruct(), (np.ndarray, (0,), b'b'), (1, (1000,), dtype, False, b'\0' * 8))


def save_rebinding_history_buffer(path):
    """A HistoryBuffer whose pickled statistics map 'mean' to 'max' (mmengine's
    own __setstate__ writes them into the class-wide table)."""
    buffer = HistoryBuffer([1.0, 3.0], [1, 1])
    honest = HistoryBuffer.__getstate__
    HistoryBuffer.__getstate__ = lambda self: dict(
        self.__dict__, statistics_methods={'mean': HistoryBuffer.max}
    )
    try:
        torch.save(dict(message_hub=dict(log_scalars=dict(loss=buffer))), path)
    finally:
        HistoryBuffer.__getstate__ = honest


CRAFTED = {
    'os.system': lambda marker: Reduce(os.system, (f'touch {marker}',)),
    'eval': lambda marker: Reduce(eval, (f'open({str(marker)!r}, "w")',)),
    'numpy object array': lambda marker: object_array(),
    'numpy dtype state': lambda marker: rebuilt_dtype(),
    'numpy short array': lambda marker: short_array(),
    'getattr of another class': lambda marker: Reduce(
        getattr, (collections.OrderedDict, 'fromkeys')
    ),
    'getattr of HistoryBuffer.update': lambda marker: Reduce(getattr, (HistoryBuffer, 'update')),
    'getattr of HistoryBuffer.register_statistics': lambda marker: Reduce(
        getattr, (HistoryBuffer, 'register_statistics')
    ),
}


def write(path, name, marker, wrap=True):
    """A checkpoint at ``path`` with crafted entry ``name`` inside MMEngine's
    layout (so that every loader reaches it)."""
    payload = CRAFTED[name](marker)
    obj = (
        dict(
            state_dict={'w': torch.ones(1)},
            meta=dict(x=payload),
            message_hub=dict(log_scalars={}, runtime_info={}, resumed_keys={}),
        )
        if wrap
        else payload
    )
    torch.save(obj, path)
    return str(path)
