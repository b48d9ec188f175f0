"""Record intermediate outputs of a model by module path, with forward hooks,
without editing the model's code."""
import difflib
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

__all__ = ['TapSpec', 'FeatureTaps']


class TapSpec:
    """Where a tap reads: a module path, and optionally an item of its output.

    Written in configs as ``'backbone.layers.3'`` or
    ``dict(module='backbone', index=-1)`` (``index`` picks an item of a tuple
    or list output; ``key`` picks an entry of a dict output; ``input=True``
    records the module's first positional input instead of its output;
    ``pool='mean'`` averages tokens (B, N, C) -> (B, C), after dropping the
    first ``skip_tokens`` (e.g. class and distillation tokens), or maps
    (B, C, H, W) -> (B, C)).
    """

    KEYS = ('module', 'index', 'key', 'input', 'pool', 'skip_tokens')

    def __init__(self,
                 module: str,
                 index: Optional[int] = None,
                 key: Optional[str] = None,
                 input: bool = False,
                 pool: Optional[str] = None,
                 skip_tokens: int = 0):
        if pool not in (None, 'mean'):
            raise ValueError(f"tap pool must be None or 'mean', got {pool!r}")
        self.module = module
        self.index = index
        self.key = key
        self.input = input
        self.pool = pool
        self.skip_tokens = skip_tokens

    @classmethod
    def parse(cls, spec: Union[str, Mapping]) -> 'TapSpec':
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, Mapping):
            unknown = set(spec) - set(cls.KEYS)
            if unknown or 'module' not in spec:
                raise ValueError(f'a tap is a module path or a dict with keys '
                                 f'{cls.KEYS} (module required), got {dict(spec)}')
            return cls(**spec)
        raise TypeError(f'a tap must be a str or dict, got {type(spec).__name__}')

    def select(self, value):
        if self.index is not None:
            value = value[self.index]
        if self.key is not None:
            value = value[self.key]
        if self.pool == 'mean':
            if value.dim() == 4:
                return value.mean(dim=(2, 3))
            if value.dim() != 3:
                raise ValueError(f'pool=mean needs (B, N, C) tokens or (B, C, H, W) '
                                 f'maps, got shape {tuple(value.shape)} at {self.module!r}')
            return value[:, self.skip_tokens:].mean(dim=1)
        return value


def resolve_module(model: nn.Module, path: str, owner: str = 'model') -> nn.Module:
    """``model.get_submodule(path)`` with an error that suggests close paths."""
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        close = difflib.get_close_matches(path, names, n=3, cutoff=0.5)
        hint = f'; did you mean {close}?' if close else ''
        raise KeyError(f'{owner} has no module {path!r}{hint}') from None


class FeatureTaps:
    """Forward hooks that store what named modules produce.

    Args:
        model (nn.Module): the model to tap.
        taps (Mapping[str, str | dict]): tap name -> :class:`TapSpec`.
        owner (str): how errors refer to the model (e.g. ``'student'``).

    Every path is checked when the taps are made (``KeyError`` naming the
    tap and the path). :meth:`collect` returns the recorded values and
    forgets them; reading a tap whose module did not run raises ``KeyError``.
    """

    def __init__(self, model: nn.Module, taps: Mapping, owner: str = 'model'):
        self.owner = owner
        self.specs: Dict[str, TapSpec] = {}
        self.modules: Dict[str, nn.Module] = {}
        self._records: Dict[str, object] = {}
        self._handles = []
        for name, spec in taps.items():
            spec = TapSpec.parse(spec)
            try:
                module = resolve_module(model, spec.module, owner)
            except KeyError as err:
                raise KeyError(f'{owner} tap {name!r}: {err.args[0]}') from None
            self.specs[name] = spec
            self.modules[name] = module
            self._handles.append(module.register_forward_hook(self._hook(name, spec)))

    def _hook(self, name: str, spec: TapSpec):

        def record(module, args, output):
            self._records[name] = spec.select(args[0] if spec.input else output)

        return record

    def collect(self) -> Dict[str, torch.Tensor]:
        """The values recorded since the last call, by tap name."""
        missing = [n for n in self.specs if n not in self._records]
        if missing:
            paths = [self.specs[n].module for n in missing]
            self._records.clear()
            raise KeyError(f'{self.owner} taps {missing} (modules {paths}) '
                           'did not run in this forward pass')
        records, self._records = self._records, {}
        return records

    def remove(self) -> None:
        """Detach the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
