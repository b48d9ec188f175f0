"""The student part of a MoKDDistiller checkpoint."""

import collections
from typing import Dict

STUDENT_PREFIX = 'student.'


def extract_student(checkpoint: Dict, source: str = 'checkpoint') -> Dict:
    """The student's weights of a ``MoKDDistiller`` checkpoint, as a
    checkpoint of the student model: ``{'state_dict', 'meta'}`` with the
    ``student.`` prefix removed and the dataset metadata kept.

    Raises:
        KeyError: ``checkpoint`` (named ``source`` in the message) has no
            ``state_dict`` or no student weights.
    """
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise KeyError(f'{source} has no "state_dict": it is not an MMEngine checkpoint')
    state = checkpoint['state_dict']
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
