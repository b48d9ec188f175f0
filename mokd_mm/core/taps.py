"""Record intermediate outputs of a model by module path, with forward hooks,
without editing the model's code."""

import difflib
from contextlib import contextmanager
from typing import Dict, List, Mapping, Optional, Union

import torch
from torch import nn

from .layout import pool

__all__ = ['TapSpec', 'FeatureTaps', 'resolve_module']


class TapSpec:
    """Where a tap reads: a module path, which call of it, and optionally an
    item of its output.

    Written in configs as ``'backbone.layers.3'`` or
    ``dict(module='backbone', index=-1)``:

    * ``index`` picks an item of a tuple or list output, ``key`` an entry of
      a dict output; ``input=True`` records the module's first positional
      input instead of its output;
    * ``call`` picks which call of the module within one forward pass (a
      module may run several times, e.g. a head's convolution once per
      feature level): ``-1`` (default) the last, ``0`` the first, ...;
    * ``pool='mean'`` averages tokens (B, N, C) -> (B, C), after dropping the
      first ``skip_tokens`` (e.g. class and distillation tokens), or maps
      (B, C, H, W) -> (B, C).
    """

    KEYS = ('module', 'index', 'key', 'input', 'pool', 'skip_tokens', 'call')

    def __init__(
        self,
        module: str,
        index: Optional[int] = None,
        key: Optional[str] = None,
        input: bool = False,
        pool: Optional[str] = None,
        skip_tokens: int = 0,
        call: int = -1,
    ):
        if pool not in (None, 'mean'):
            raise ValueError(f"tap pool must be None or 'mean', got {pool!r}")
        if not isinstance(call, int):
            raise ValueError(f'tap call must be an int, got {call!r}')
        self.module = module
        self.index = index
        self.key = key
        self.input = input
        self.pool = pool
        self.skip_tokens = skip_tokens
        self.call = call

    @classmethod
    def parse(cls, spec: Union[str, Mapping]) -> 'TapSpec':
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, Mapping):
            unknown = set(spec) - set(cls.KEYS)
            if unknown or 'module' not in spec:
                raise ValueError(
                    f'a tap is a module path or a dict with keys '
                    f'{cls.KEYS} (module required), got {dict(spec)}'
                )
            return cls(**spec)
        raise TypeError(f'a tap must be a str or dict, got {type(spec).__name__}')

    def select(self, value):
        """The recorded item of one call's input or output."""
        if self.index is not None:
            value = value[self.index]
        if self.key is not None:
            value = value[self.key]
        if self.pool == 'mean':
            try:
                return pool(value, self.skip_tokens)
            except ValueError as err:
                raise ValueError(f'tap at {self.module!r}: {err}') from None
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
    """Forward hooks that store what named modules produce, while recording.

    Args:
        model (nn.Module): the model to tap.
        taps (Mapping[str, str | dict]): tap name -> :class:`TapSpec`.
        owner (str): how errors refer to the model (e.g. ``'student'``).

    Every path is checked when the taps are made (``KeyError`` naming the tap
    and the path). The hooks store nothing outside :meth:`recording` (so
    validation and inference keep no feature maps alive); inside it, every
    call of a tapped module is kept, and :meth:`collect` returns the call
    each tap asks for.
    """

    def __init__(self, model: nn.Module, taps: Mapping, owner: str = 'model'):
        self.owner = owner
        self.specs: Dict[str, TapSpec] = {}
        self.modules: Dict[str, nn.Module] = {}
        self._calls: Dict[str, List[object]] = {}
        self._recording = False
        for name, spec in taps.items():
            spec = TapSpec.parse(spec)
            try:
                module = resolve_module(model, spec.module, owner)
            except KeyError as err:
                raise KeyError(f'{owner} tap {name!r}: {err.args[0]}') from None
            self.specs[name] = spec
            self.modules[name] = module
            module.register_forward_hook(self._hook(name, spec))

    def _hook(self, name: str, spec: TapSpec):

        def record(module, args, output):
            if self._recording:
                self._calls.setdefault(name, []).append(
                    spec.select(args[0] if spec.input else output)
                )

        return record

    @contextmanager
    def recording(self):
        """Record the tapped modules' calls of the forward pass run inside."""
        self._calls.clear()
        self._recording = True
        try:
            yield self
        finally:
            self._recording = False

    def collect(self) -> Dict[str, torch.Tensor]:
        """The value each tap selects from the calls recorded, by tap name;
        the records are then dropped."""
        calls, self._calls = self._calls, {}
        records, problems = {}, []
        for name, spec in self.specs.items():
            seen = calls.get(name, [])
            if not -len(seen) <= spec.call < len(seen):
                problems.append(
                    f'{name!r} (module {spec.module!r} ran {len(seen)} '
                    f'time(s), the tap reads call {spec.call})'
                )
                continue
            records[name] = seen[spec.call]
        if problems:
            raise KeyError(f'{self.owner} taps {", ".join(problems)} in this forward pass')
        return records
