"""Model configs from a dict, a config file or a package's config."""

import copy
import os.path as osp
from typing import Union

from mmengine.config import Config, ConfigDict

ModelSpec = Union[str, dict]


def load_model_config(spec: ModelSpec, role: str) -> dict:
    """A model config from a dict, or from the ``model`` of a config file
    given as a path or as ``'mmdet::path'`` / ``'mmpretrain::path'``, or as
    ``dict(config=path, **overrides)`` (the file's model with ``overrides``
    merged in, e.g. ``pretrained=False``).

    A file's ``default_scope`` becomes the model's ``_scope_`` so that it is
    built in its own library's registry whatever the distiller's scope is.
    """
    if isinstance(spec, (dict, ConfigDict)) and 'config' in spec:
        overrides = copy.deepcopy(dict(spec))
        model = Config(dict(model=load_model_config(overrides.pop('config'), role)))
        model.merge_from_dict(dict(model=overrides))
        return model.model.to_dict()
    if isinstance(spec, (dict, ConfigDict)):
        return copy.deepcopy(dict(spec))
    if not isinstance(spec, str):
        raise TypeError(
            f'{role} must be a model config dict or a config path, got {type(spec).__name__}'
        )
    if '::' in spec:
        from mmengine.hub import get_config

        cfg = get_config(spec)
    else:
        if not osp.isfile(spec):
            raise FileNotFoundError(f'{role} config {spec!r} does not exist')
        cfg = Config.fromfile(spec)
    if 'model' not in cfg:
        raise KeyError(f'{role} config {spec!r} has no "model"')
    model = cfg.model.to_dict()
    if cfg.get('default_scope') and '_scope_' not in model:
        model['_scope_'] = cfg.default_scope
    return model
