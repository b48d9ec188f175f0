"""One distillation loss of a distiller: the taps it reads, a connector per
matched pair of features, and the loss module."""

import copy
from typing import Dict, Optional, Set

import torch
from mmengine.config import ConfigDict
from mmengine.registry import MODELS
from torch import nn

from mokd_mm.core import FeatureTaps
from mokd_mm.core.taps import TapSpec

ROLES = ('student', 'teacher')


def declared_channels(module: nn.Module, spec: TapSpec) -> Optional[int]:
    """The channels a tapped module produces (or takes, for input taps) when
    its type says so; None otherwise (e.g. an item of a tuple output)."""
    if spec.index is not None or spec.key is not None:
        return None
    if isinstance(module, nn.Linear):
        return module.in_features if spec.input else module.out_features
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.in_channels if spec.input else module.out_channels
    if isinstance(module, nn.LayerNorm):
        return module.normalized_shape[-1]
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.num_features
    if isinstance(module, nn.GroupNorm):
        return module.num_channels
    # OpenMMLab conventions: ConvModule & co. carry in_/out_channels,
    # transformer layers embed_dims (the width of what they take and give).
    for attr in ('in_channels' if spec.input else 'out_channels', 'embed_dims'):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    return None


class DistillLoss(nn.Module):
    """One entry of a distiller's ``distill_losses``.

    Config keys:

    * ``student``, ``teacher``: a tap name each, or equal-length lists of tap
      names (several matched streams, e.g. a detector's feature levels);
    * ``connector`` (optional): one config used for every pair, or one per
      pair; ``student_dim`` / ``teacher_dim`` left out are the channels the
      tapped modules declare (:func:`declared_channels`);
    * ``student_inputs``, ``teacher_inputs`` (optional): ``{keyword: tap
      name}``, extra keyword arguments of the loss's ``forward`` for a loss
      that needs more than the matched features (e.g. a mask);
    * the loss's own ``type`` and arguments.

    Every tap name is checked against the taps, and every given connector
    size against what the tapped module declares, when it is built.

    Gradients, one rule for every loss: a teacher feature is a fixed target
    (detached) unless a connector maps it, in which case the connector's
    teacher-side part (``P_t`` of MoKD's eq. 16) learns from the loss; the
    teacher itself never does (it runs under ``no_grad``).

    Args:
        name (str): the loss's name (``distill.<name>`` in the logs).
        cfg (dict): the entry.
        student_taps (FeatureTaps): the student's taps.
        teacher_taps (FeatureTaps): the teacher's taps.
    """

    def __init__(self, name: str, cfg: dict, student_taps: FeatureTaps, teacher_taps: FeatureTaps):
        super().__init__()
        cfg = copy.deepcopy(dict(cfg))
        self.name = name
        try:
            student, teacher = cfg.pop('student'), cfg.pop('teacher')
        except KeyError as err:
            raise KeyError(
                f'distill_losses.{name} needs "student" and "teacher" tap names; missing {err}'
            ) from None
        connector = cfg.pop('connector', None)
        self.inputs = {role: dict(cfg.pop(f'{role}_inputs', None) or {}) for role in ROLES}
        self.single = isinstance(student, str)
        self.streams = {
            'student': [student] if self.single else list(student),
            'teacher': [teacher] if isinstance(teacher, str) else list(teacher),
        }
        pairs = len(self.streams['student'])
        if pairs != len(self.streams['teacher']):
            raise ValueError(
                f'distill_losses.{name}: {pairs} student taps but '
                f'{len(self.streams["teacher"])} teacher taps'
            )
        taps = dict(student=student_taps, teacher=teacher_taps)
        for role in ROLES:
            for tap in self.streams[role] + list(self.inputs[role].values()):
                if tap not in taps[role].specs:
                    raise KeyError(
                        f'distill_losses.{name} reads {role} tap {tap!r}, which '
                        f'{role}_taps does not define (it has '
                        f'{sorted(taps[role].specs)})'
                    )
        if connector is None or isinstance(connector, (dict, ConfigDict)):
            connector = [connector] * pairs
        if len(connector) != pairs:
            raise ValueError(
                f'distill_losses.{name}: give one connector or one per tap pair ({pairs})'
            )
        self.connectors = nn.ModuleList(
            nn.Identity() if c is None else self._build_connector(c, i, taps)
            for i, c in enumerate(connector)
        )
        self.loss = MODELS.build(cfg)

    def _build_connector(self, cfg: dict, pair: int, taps: Dict[str, FeatureTaps]) -> nn.Module:
        """The connector of ``pair``, its missing sizes read from the tapped
        modules and its given ones checked against them."""
        cfg = copy.deepcopy(dict(cfg))
        declared = {}
        for role in ROLES:
            tap = self.streams[role][pair]
            declared[role] = declared_channels(taps[role].modules[tap], taps[role].specs[tap])
            key = f'{role}_dim'
            if cfg.get(key) is None:
                if declared[role] is None:
                    raise ValueError(
                        f'distill_losses.{self.name}: cannot tell the channels of '
                        f'{role} tap {tap!r} from its module; give the connector '
                        f'{key}'
                    )
                cfg[key] = declared[role]
            elif declared[role] is not None and cfg[key] != declared[role]:
                raise ValueError(
                    f'distill_losses.{self.name}: the connector expects {key}={cfg[key]} but '
                    f'{role} tap {tap!r} (module {taps[role].specs[tap].module!r}) has '
                    f'{declared[role]} channels'
                )
        return MODELS.build(cfg)

    def taps_read(self) -> Dict[str, Set[str]]:
        """The tap names this loss reads, by role."""
        return {role: set(self.streams[role]) | set(self.inputs[role].values()) for role in ROLES}

    def forward(
        self, student: Dict[str, torch.Tensor], teacher: Dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The loss from the recorded taps of both models (by tap name)."""
        s_feats, t_feats = [], []
        for s_name, t_name, connector in zip(
            self.streams['student'], self.streams['teacher'], self.connectors
        ):
            # The teacher's feature is a target; a connector's teacher side learns.
            s, t = student[s_name], teacher[t_name].detach()
            try:
                if not isinstance(connector, nn.Identity):
                    s, t = connector(s, t)
            except ValueError as err:
                raise ValueError(
                    f'distill_losses.{self.name} (student tap {s_name!r}, '
                    f'teacher tap {t_name!r}): {err}'
                ) from None
            s_feats.append(s)
            t_feats.append(t)
        extra = {kw: student[tap] for kw, tap in self.inputs['student'].items()}
        extra.update({kw: teacher[tap] for kw, tap in self.inputs['teacher'].items()})
        try:
            if self.single:
                return self.loss(s_feats[0], t_feats[0], **extra)
            return self.loss(s_feats, t_feats, **extra)
        except ValueError as err:
            raise ValueError(f'distill_losses.{self.name}: {err}') from None
