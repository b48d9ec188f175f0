"""Loading a distiller from a checkpoint of its student alone (``load_from``
of a pretrained detector or classifier), and refusing loads that would leave
the student partly initialised."""

from typing import Dict, Iterable, List

from mmengine.logging import print_log

from mokd_mm.checkpoint import STUDENT_PREFIX, source_of


def _first(keys: Iterable[str], n: int = 3) -> List[str]:
    return sorted(keys)[:n]


def adapt_student_keys(
    state_dict: Dict,
    prefix: str,
    local_metadata: Dict,
    own_state: Dict,
    allow_partial: bool,
) -> None:
    """Prepare ``state_dict`` (the distiller's, under ``prefix``) in place.

    * A distiller checkpoint (keys ``student.*``) is left as it is.
    * A checkpoint of the student alone (its keys are the student's own) is
      renamed into ``student.*``, with one log line; the distiller's other
      entries (the connectors) keep their current values, so that a strict
      load (``tools/test.py``) accepts it.

    Either must hold every weight of the student and no other student key,
    unless ``allow_partial``.

    Raises:
        KeyError: names the file (when the loader recorded it), the first
            missing and unexpected keys, and ``allow_partial_load``.
    """
    keys = [k[len(prefix) :] for k in state_dict if k.startswith(prefix)]
    student_keys = {k[len(STUDENT_PREFIX) :] for k in own_state if k.startswith(STUDENT_PREFIX)}
    student_prefixed = {k[len(STUDENT_PREFIX) :] for k in keys if k.startswith(STUDENT_PREFIX)}
    alone = not student_prefixed and bool(set(keys) & student_keys)
    given = set(keys) if alone else student_prefixed
    missing, unexpected = student_keys - given, given - student_keys
    source = source_of(local_metadata) or 'the state dict being loaded'
    if (missing or unexpected) and not allow_partial:
        kind = 'a checkpoint of the student alone' if alone else 'a MoKDDistiller checkpoint'
        if not alone and not student_prefixed:
            kind = 'neither a MoKDDistiller checkpoint nor one of its student'
        raise KeyError(
            f'{source} is {kind} but would load only part of the student: '
            f'{len(missing)} student weight(s) missing (first: {_first(missing)}), '
            f'{len(unexpected)} unexpected (first: {_first(unexpected)}). '
            "Give a checkpoint of the whole student, or set the distiller's "
            'allow_partial_load=True to load what matches.'
        )
    if alone:
        for key in keys:
            state_dict[f'{prefix}{STUDENT_PREFIX}{key}'] = state_dict.pop(f'{prefix}{key}')
        for key, value in own_state.items():
            if not key.startswith(STUDENT_PREFIX):
                state_dict.setdefault(f'{prefix}{key}', value)
        print_log(
            f'{source} holds the student alone: its {len(keys)} tensors were loaded into '
            "the distiller's student (the connectors keep their initialisation)",
            logger='current',
        )
