"""Weights-only loading of MMEngine checkpoints.

Besides tensors, an MMEngine checkpoint holds its MessageHub: ``HistoryBuffer``
objects whose state is two 1-d numeric numpy arrays, a length and their
statistics methods (pickled as ``getattr(HistoryBuffer, 'mean')``), plus
numpy scalars. torch's weights-only unpickler refuses every global it does
not know, so MMEngine 0.10 cannot resume from its own files on torch >= 2.6.

Admitting numpy's reconstruction functions as they are would let a crafted
file build an object array over bytes of its choosing (through
``dtype.__setstate__``), and admitting ``HistoryBuffer.__setstate__`` would
let it rewrite the class-wide table of statistics methods. Instead, each
global MMEngine's files name is mapped to a stand-in that checks its
arguments and builds only what MMEngine stores:

=================================================  ==========================
global in the file                                 stand-in
=================================================  ==========================
``numpy.dtype``                                    :class:`NumericDType`: a
                                                   bool, integer, float or
                                                   complex dtype, canonical
                                                   state only
``numpy(.core|._core).multiarray._reconstruct``    an empty :class:`SafeArray`
``numpy.ndarray``                                  :class:`SafeArray`: shape
                                                   and byte count checked
``numpy(.core|._core).multiarray.scalar``          a numeric numpy scalar
``mmengine.logging.history_buffer.HistoryBuffer``  :class:`SafeHistoryBuffer`:
                                                   exactly the three data
                                                   fields; statistics methods
                                                   ignored
``builtins.getattr``                               ``min``, ``max``,
                                                   ``current``, ``mean`` of
                                                   ``HistoryBuffer`` only
=================================================  ==========================

Anything else (``os.system``, ``eval``, other classes' attributes, object
or structured dtypes) is refused. :func:`load_checkpoint` is the loader of
local paths for MMEngine's ``CheckpointLoader`` (``--resume``,
``load_from``, ``tools/test.py``, the distiller's ``teacher_ckpt``) and for
``tools/export_student.py``; its errors name the file.
"""

import math
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from .digest import verify

__all__ = [
    'CheckpointLoadError',
    'NumericDType',
    'SafeArray',
    'SafeHistoryBuffer',
    'load_checkpoint',
    'register_safe_loading',
    'source_of',
]

NUMERIC_KINDS = 'biufc'
STATISTICS = ('min', 'max', 'current', 'mean')
HISTORY_FIELDS = {'_log_history', '_count_history', 'max_length'}
# The key of the root module's metadata that records a state dict's file.
SOURCE_KEY = 'mokd_source'


class CheckpointLoadError(RuntimeError):
    """A checkpoint file cannot be read (missing, empty, corrupt, or holding
    objects that weights-only loading refuses)."""


def _refuse(what: str):
    raise pickle.UnpicklingError(f'refusing {what} in a weights-only load')


class NumericDType:
    """Stands in for ``numpy.dtype(name, align, copy)``: a numeric dtype."""

    def __init__(self, name, align=False, copy=True):
        if not isinstance(name, str):
            _refuse(f'numpy.dtype({name!r})')
        try:
            dtype = np.dtype(name)
        except TypeError:
            _refuse(f'numpy.dtype({name!r})')
        if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
            _refuse(f'numpy.dtype({name!r}) (only bool and numeric dtypes)')
        self.dtype = dtype

    def __setstate__(self, state):
        byteorder = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if byteorder not in ('<', '>', '|', '='):
            _refuse(f'the dtype state {state!r}')
        dtype = self.dtype.newbyteorder(byteorder) if byteorder != '|' else self.dtype
        if tuple(state) != tuple(dtype.__reduce__()[2]):
            _refuse(f"the dtype state {state!r} (only a plain dtype's)")
        self.dtype = dtype


class SafeArray(np.ndarray):
    """A numpy array rebuilt from checked state: numeric dtype, shape of
    non-negative ints, exactly the bytes that shape needs. Pickles as a
    plain ``numpy.ndarray``."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            _refuse('an ndarray state that is not (version, shape, dtype, fortran, bytes)')
        version, shape, dtype, fortran, raw = state
        if not isinstance(dtype, NumericDType):
            _refuse(f'an ndarray of {type(dtype).__name__}')
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            _refuse(f'the ndarray shape {shape!r}')
        if not isinstance(raw, bytes) or len(raw) != math.prod(shape) * dtype.dtype.itemsize:
            _refuse('ndarray data that does not fill its shape')
        super().__setstate__((version, shape, dtype.dtype, bool(fortran), raw))

    def __reduce__(self):
        return np.asarray(self).view(np.ndarray).__reduce__()


def _reconstruct(subtype, shape, typecode):
    if subtype is not SafeArray:
        _refuse(f'numpy reconstruction of {subtype!r}')
    return np.ndarray.__new__(SafeArray, (0,), np.uint8)


def _scalar(dtype, raw=None):
    if (
        not isinstance(dtype, NumericDType)
        or not isinstance(raw, bytes)
        or len(raw) != dtype.dtype.itemsize
    ):
        _refuse('a numpy scalar that is not numeric')
    return np.frombuffer(raw, dtype=dtype.dtype, count=1)[0].copy()


class SafeHistoryBuffer(HistoryBuffer):
    """Stands in for ``HistoryBuffer`` while unpickling: takes exactly its
    data fields (1-d numeric arrays of one length, an int maximum length),
    ignores the pickled statistics methods (mmengine's own ``__setstate__``
    would write them into the class-wide table) and then becomes a plain
    ``HistoryBuffer``."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            _refuse('a HistoryBuffer state that is not a dict')
        state = {k: v for k, v in state.items() if k != 'statistics_methods'}
        if set(state) != HISTORY_FIELDS:
            _refuse(f'HistoryBuffer fields {sorted(state)}')
        logs, counts, max_length = (
            state['_log_history'],
            state['_count_history'],
            state['max_length'],
        )
        if not (
            isinstance(logs, SafeArray)
            and isinstance(counts, SafeArray)
            and logs.ndim == counts.ndim == 1
            and logs.shape == counts.shape
            and isinstance(max_length, int)
        ):
            _refuse('HistoryBuffer data that is not two 1-d arrays of one length')
        self.__dict__.update(
            _log_history=np.asarray(logs).view(np.ndarray).copy(),
            _count_history=np.asarray(counts).view(np.ndarray).copy(),
            max_length=max_length,
        )
        self._set_default_statistics()
        self.__class__ = HistoryBuffer


def _statistic(owner, name):
    """``getattr`` while unpickling: the four statistics of HistoryBuffer."""
    if owner not in (HistoryBuffer, SafeHistoryBuffer) or name not in STATISTICS:
        _refuse(
            f'getattr({owner!r}, {name!r}) (only HistoryBuffer statistics: {", ".join(STATISTICS)})'
        )
    return getattr(HistoryBuffer, name)


def register_safe_loading() -> None:
    """Admit the stand-ins to ``torch.load(weights_only=True)`` under the
    names MMEngine's files use, and make :func:`load_checkpoint` MMEngine's
    loader of local paths."""
    stand_ins = [
        (NumericDType, 'numpy.dtype'),
        (SafeArray, 'numpy.ndarray'),
        (SafeHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_statistic, 'builtins.getattr'),
    ]
    for core in ('numpy.core', 'numpy._core'):
        stand_ins += [
            (_reconstruct, f'{core}.multiarray._reconstruct'),
            (_scalar, f'{core}.multiarray.scalar'),
        ]
    torch.serialization.add_safe_globals(stand_ins)
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_local)


def load_checkpoint(path: str, map_location='cpu'):
    """``torch.load(path, weights_only=True)`` with an error naming the file,
    after checking the file against the digest it carries
    (:mod:`.digest`; files without one load unchecked).

    Raises:
        CheckpointLoadError: the file is missing, empty, corrupt (its digest
            does not match, or torch cannot read it) or holds objects that
            weights-only loading refuses.
    """
    path = str(path)
    if not osp.isfile(path):
        raise CheckpointLoadError(f'checkpoint {path!r} does not exist')
    if osp.getsize(path) == 0:
        raise CheckpointLoadError(f'checkpoint {path!r} is empty (an interrupted copy?)')
    if verify(path) is False:
        raise CheckpointLoadError(
            f'checkpoint {path!r} is corrupt: its contents do not match the SHA-256 digest '
            'it was written with (damaged on disk or in a copy); use another checkpoint'
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for a bad file
        raise CheckpointLoadError(
            f'checkpoint {path!r} cannot be loaded safely: {_reason(err)}'
        ) from err
    return _tag_source(checkpoint, path)


def _tag_source(checkpoint, path: str):
    """Record ``path`` in the state dict's metadata (``_metadata['']``, which
    MMEngine's and torch's loaders hand to the root module), so that a model
    can name the file in its errors."""
    is_wrapped = isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict)
    state = checkpoint['state_dict'] if is_wrapped else checkpoint
    if not isinstance(state, dict):
        return checkpoint
    if not isinstance(state, OrderedDict):
        metadata = getattr(state, '_metadata', None)
        state = OrderedDict(state)
        if metadata is not None:
            state._metadata = metadata
    if getattr(state, '_metadata', None) is None:
        state._metadata = OrderedDict()
    state._metadata.setdefault('', {})[SOURCE_KEY] = path
    if is_wrapped:
        checkpoint['state_dict'] = state
        return checkpoint
    return state


def source_of(local_metadata) -> Optional[str]:
    """The file a state dict was read from, from the metadata a module's
    ``_load_from_state_dict`` receives (None when not read by
    :func:`load_checkpoint`)."""
    return local_metadata.get(SOURCE_KEY) if isinstance(local_metadata, dict) else None


def _reason(err: Exception) -> str:
    """The informative part of torch's weights-only error (it wraps the
    cause in advice to turn weights-only loading off, which we do not)."""
    found = re.search(r'WeightsUnpickler error: ([^\n]*)', str(err))
    if found:
        return f'{type(err).__name__}: {found.group(1).strip()}'
    paragraphs = [p.strip() for p in str(err).split('\n\n') if p.strip()]
    useful = [
        p
        for p in paragraphs
        if not p.startswith(('Weights only load failed', 'Check the documentation'))
    ]
    return f'{type(err).__name__}: ' + (' '.join(useful) or (paragraphs or [''])[0])


def _load_local(filename, map_location=None, logger=None):
    """MMEngine's ``CheckpointLoader`` scheme for local paths."""
    return load_checkpoint(osp.expanduser(filename), map_location)
