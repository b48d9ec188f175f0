"""The student part of a MoKDDistiller checkpoint."""

import collections
from typing import Dict

STUDENT_PREFIX = 'student.'


EMA_PREFIX = 'module.'


def extract_student(checkpoint: Dict, source: str = 'checkpoint', ema: bool = True) -> Dict:
    """The student's weights of a ``MoKDDistiller`` checkpoint, as a
    checkpoint of the student model: ``{'state_dict', 'meta'}`` with the
    ``student.`` prefix removed and the dataset metadata kept.

    A run with MMEngine's ``EMAHook`` saves the averaged weights as the
    ``state_dict`` and the trained ones under ``ema_state_dict`` (with a
    ``module.`` prefix): ``ema=True`` exports the former (what validation
    evaluated), ``ema=False`` the latter.

    Raises:
        KeyError: ``checkpoint`` (named ``source`` in the message) has no
            ``state_dict``, no student weights, or (``ema=False``) no
            ``ema_state_dict``.
    """
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise KeyError(f'{source} has no "state_dict": it is not an MMEngine checkpoint')
    state = checkpoint['state_dict']
    if not ema:
        if 'ema_state_dict' not in checkpoint:
            raise KeyError(
                f'{source} has no "ema_state_dict": the run had no EMAHook, so its '
                'state_dict already holds the trained weights'
            )
        state = {
            key[len(EMA_PREFIX) :]: value
            for key, value in checkpoint['ema_state_dict'].items()
            if key.startswith(EMA_PREFIX)
        }
    student = collections.OrderedDict(
        (key[len(STUDENT_PREFIX) :], value)
        for key, value in state.items()
        if key.startswith(STUDENT_PREFIX)
    )
    if not student:
        raise KeyError(
            f'{source} has no "{STUDENT_PREFIX}*" weights: it is not a MoKDDistiller checkpoint'
        )
    meta = {}
    dataset_meta = (checkpoint.get('meta') or {}).get('dataset_meta')
    if dataset_meta is not None:
        meta['dataset_meta'] = dataset_meta
    return dict(state_dict=student, meta=meta)
