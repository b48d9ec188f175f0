"""MoKDDistiller: a student trained from a frozen teacher, with its losses
grouped into objectives that :class:`~mokd_mm.engine.MoKDOptimWrapper`
balances."""
import copy
import fnmatch
import os.path as osp
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
from torch import nn

from mokd_mm.core import FeatureTaps
from mokd_mm.core.reevaluation import reevaluation_mode
from mokd_mm.core.taps import TapSpec, resolve_module

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
        raise TypeError(f'{role} must be a model config dict or a config path, '
                        f'got {type(spec).__name__}')
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


def _declared_channels(module: nn.Module, spec: TapSpec) -> Optional[int]:
    """Channels a tapped module produces (or takes, for input taps), when
    its type says so; None otherwise."""
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
    """One distillation loss: the taps it reads, a connector per matched
    pair, and the loss module. Built from one entry of ``distill_losses``.
    """

    def __init__(self, name: str, cfg: dict,
                 channels: Callable[[str, str], Optional[int]]):
        super().__init__()
        cfg = copy.deepcopy(dict(cfg))
        self.name = name
        try:
            student, teacher = cfg.pop('student'), cfg.pop('teacher')
        except KeyError as err:
            raise KeyError(f'distill_losses.{name} needs "student" and '
                           f'"teacher" tap names; missing {err}') from None
        connector = cfg.pop('connector', None)
        self.single = isinstance(student, str)
        self.student_taps = [student] if self.single else list(student)
        self.teacher_taps = [teacher] if isinstance(teacher, str) else list(teacher)
        if len(self.student_taps) != len(self.teacher_taps):
            raise ValueError(f'distill_losses.{name}: {len(self.student_taps)} '
                             f'student taps but {len(self.teacher_taps)} '
                             'teacher taps')
        if connector is None or isinstance(connector, (dict, ConfigDict)):
            connector = [connector] * len(self.student_taps)
        if len(connector) != len(self.student_taps):
            raise ValueError(f'distill_losses.{name}: give one connector or '
                             f'one per tap pair ({len(self.student_taps)})')
        self.connectors = nn.ModuleList(
            nn.Identity() if c is None else MODELS.build(self._sized(c, s, t, channels))
            for c, s, t in zip(connector, self.student_taps, self.teacher_taps))
        self.loss = MODELS.build(cfg)

    def _sized(self, connector: dict, s_tap: str, t_tap: str,
               channels: Callable[[str, str], Optional[int]]) -> dict:
        """``connector`` with ``student_dim`` / ``teacher_dim`` filled in
        from the tapped modules where the config leaves them out."""
        connector = copy.deepcopy(dict(connector))
        for role, tap in (('student', s_tap), ('teacher', t_tap)):
            key = f'{role}_dim'
            if connector.get(key) is None:
                connector[key] = channels(role, tap)
                if connector[key] is None:
                    raise ValueError(
                        f'distill_losses.{self.name}: cannot tell the channels '
                        f'of {role} tap {tap!r} from its module; give the '
                        f'connector {key}')
        return connector

    def forward(self, student: Dict[str, torch.Tensor],
                teacher: Dict[str, torch.Tensor]) -> torch.Tensor:
        s_feats, t_feats = [], []
        for s_name, t_name, connector in zip(self.student_taps,
                                             self.teacher_taps, self.connectors):
            s, t = student[s_name], teacher[t_name]
            try:
                if not isinstance(connector, nn.Identity):
                    s, t = connector(s, t)
            except ValueError as err:
                raise ValueError(f'distill_losses.{self.name} (student tap '
                                 f'{s_name!r}, teacher tap {t_name!r}): '
                                 f'{err}') from None
            s_feats.append(s)
            t_feats.append(t)
        try:
            if self.single:
                return self.loss(s_feats[0], t_feats[0])
            return self.loss(s_feats, t_feats)
        except ValueError as err:
            raise ValueError(f'distill_losses.{self.name}: {err}') from None


@MODELS.register_module()
class MoKDDistiller(BaseModel):
    """Distil a student from a frozen teacher with MoKD.

    The losses of one training step are the student's own losses (named
    ``student.<key>``, e.g. ``student.loss_cls``) and the distillation
    losses (``distill.<name>`` for each entry of ``distill_losses``). Each
    loss belongs to exactly one objective by the glob patterns of
    ``objectives``; the objectives (sums of their losses) go to
    :class:`~mokd_mm.engine.MoKDOptimWrapper`, which weights them.

    Distillation losses read features recorded by forward hooks at module
    paths of either model (``student_taps`` / ``teacher_taps``), optionally
    passed through a connector per matched pair.

    The teacher is frozen, always in eval mode and run under ``no_grad``.
    It is held outside this module's tree, so it is not in ``state_dict()``
    (checkpoints hold the student and the connectors), not in
    ``parameters()`` (hence not in the optimizer) and not touched by
    ``train()``; it still follows ``.to()`` / ``.cuda()``. Its checkpoint
    is loaded on the CPU when the distiller is built.

    ``mode='predict'`` and ``'tensor'`` run the student alone (or the teacher,
    with ``predict_with='teacher'``), so validation and ``tools/test.py``
    evaluate the student.

    Args:
        student (dict | str): the student's model config, or a config file
            (path, or ``'mmdet::...'`` / ``'mmpretrain::...'``) whose
            ``model`` is taken, or ``dict(config=file, **overrides)``.
        teacher (dict | str): the teacher, likewise.
        teacher_ckpt (str, optional): the teacher's checkpoint, loaded
            strictly on the CPU when training starts (the first ``train()``
            or training step), so that testing and exporting the student need
            no teacher file. Without it the teacher keeps its initialisation
            (for tests only).
        student_taps (dict, optional): tap name -> module path of the
            student, or ``dict(module=..., index=..., key=..., input=...)``.
        teacher_taps (dict, optional): likewise for the teacher.
        distill_losses (dict, optional): loss name -> loss config with
            ``student`` and ``teacher`` (a tap name, or equal-length lists of
            tap names for several matched streams), optionally ``connector``
            (one config used for every pair, or a list; a connector's
            ``student_dim`` / ``teacher_dim``, when left out, are the
            channels the tapped modules declare), and the loss's own
            ``type`` and arguments.
        objectives (dict, optional): objective name -> list of glob patterns
            over loss names. Defaults to
            ``dict(distill=['distill.*'], task=['student.*'])``.
        data_preprocessor (dict, optional): the preprocessing of both models
            where their configs set none (the Runner passes a config's
            top-level ``data_preprocessor`` here). The distiller preprocesses
            with the student's; the teacher must normalise the same way.
        predict_with (str): ``'student'`` (default) or ``'teacher'``.
        init_cfg (dict, optional): MMEngine init config.
    """

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 teacher_ckpt: Optional[str] = None,
                 student_taps: Optional[dict] = None,
                 teacher_taps: Optional[dict] = None,
                 distill_losses: Optional[dict] = None,
                 objectives: Optional[Dict[str, Sequence[str]]] = None,
                 data_preprocessor: Optional[dict] = None,
                 predict_with: str = 'student',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if predict_with not in ('student', 'teacher'):
            raise ValueError("predict_with must be 'student' or 'teacher', got "
                             f'{predict_with!r}')
        self.predict_with = predict_with
        student_cfg = load_model_config(student, 'student')
        teacher_cfg = load_model_config(teacher, 'teacher')
        if data_preprocessor is not None:
            # E.g. the Runner passes a config's top-level data_preprocessor.
            student_cfg.setdefault('data_preprocessor', copy.deepcopy(data_preprocessor))
            teacher_cfg.setdefault('data_preprocessor', copy.deepcopy(data_preprocessor))
        self.student = MODELS.build(student_cfg)
        teacher_model = MODELS.build(teacher_cfg)
        self.teacher_ckpt = teacher_ckpt
        self._teacher_loaded = teacher_ckpt is None
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        # Outside the module tree on purpose: see the class docstring.
        object.__setattr__(self, '_teacher', teacher_model)
        self.data_preprocessor = self.student.data_preprocessor
        _check_same_normalisation(self.data_preprocessor,
                                  teacher_model.data_preprocessor)

        self._student_taps = FeatureTaps(self.student, student_taps or {}, 'student')
        self._teacher_taps = FeatureTaps(teacher_model, teacher_taps or {}, 'teacher')
        self.distill_losses = nn.ModuleDict()
        for name, cfg in (distill_losses or {}).items():
            self.distill_losses[name] = DistillLoss(
                name, cfg, lambda role, tap, name=name: self._tap_channels(name, role, tap))
        self._check_taps()
        self._check_query_counts()
        self.objectives = OrderedDict(
            (name, list(patterns)) for name, patterns in (
                objectives or dict(distill=['distill.*'], task=['student.*'])).items())
        if len(self.objectives) < 2:
            raise ValueError(f'objectives needs >= 2 entries, got {list(self.objectives)}')
        for name in self.distill_losses:
            self._objective_of(f'distill.{name}')
        self._assignment: Dict[Tuple[str, ...], Dict[str, str]] = {}

    # -------------------------------------------------------------- build
    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a registered submodule)."""
        return self._teacher

    def train(self, mode: bool = True):
        """Also loads the teacher's weights, the first time training starts."""
        if mode:
            self._load_teacher_once()
        return super().train(mode)

    def _load_teacher_once(self) -> None:
        if not self._teacher_loaded:
            _load_teacher(self.teacher, self.teacher_ckpt)
            self._teacher_loaded = True

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self._teacher._apply(fn, *args, **kwargs)
        return self

    def _tap_channels(self, loss: str, role: str, tap: str) -> Optional[int]:
        """The channels ``role``'s tap ``tap`` declares (None if its module
        does not say); a KeyError naming ``loss`` if there is no such tap."""
        taps = self._student_taps if role == 'student' else self._teacher_taps
        if tap not in taps.specs:
            raise KeyError(f'distill_losses.{loss} reads {role} tap '
                           f'{tap!r}, which {role}_taps does not '
                           f'define (it has {sorted(taps.specs)})')
        return _declared_channels(taps.modules[tap], taps.specs[tap])

    def _check_taps(self) -> None:
        """Every loss reads existing taps; every tap is read; connectors'
        sizes agree with what the tapped modules declare."""
        read = {'student': set(), 'teacher': set()}
        for name, loss in self.distill_losses.items():
            for s_name, t_name, connector in zip(loss.student_taps,
                                                 loss.teacher_taps, loss.connectors):
                for role, tap, taps, dim_key in (
                        ('student', s_name, self._student_taps, 'student_dim'),
                        ('teacher', t_name, self._teacher_taps, 'teacher_dim')):
                    declared = self._tap_channels(name, role, tap)
                    read[role].add(tap)
                    expected = getattr(connector, dim_key, None)
                    if expected is not None and declared is not None and expected != declared:
                        raise ValueError(
                            f'distill_losses.{name}: the connector expects '
                            f'{dim_key}={expected} but {role} tap {tap!r} '
                            f'(module {taps.specs[tap].module!r}) has {declared} '
                            'channels')
        for role, taps in (('student', self._student_taps), ('teacher', self._teacher_taps)):
            unused = sorted(set(taps.specs) - read[role])
            if unused:
                raise ValueError(f'{role}_taps {unused} are read by no '
                                 'distillation loss')

    def _check_query_counts(self) -> None:
        """Query-based detectors (DETR family, ViDT's [DET] tokens) are
        distilled token by token, matched by index: their counts must agree."""
        counts = [getattr(m, 'num_queries', None) for m in (self.student, self.teacher)]
        if self.distill_losses and None not in counts and counts[0] != counts[1]:
            raise ValueError(
                f'student.num_queries={counts[0]} but teacher.num_queries='
                f'{counts[1]}: distillation matches [DET] tokens / queries by '
                'index, so give both models the same num_queries')

    def _objective_of(self, loss_name: str) -> str:
        hits = [
            objective for objective, patterns in self.objectives.items()
            if any(fnmatch.fnmatchcase(loss_name, p) for p in patterns)
        ]
        if len(hits) != 1:
            where = 'no objective' if not hits else f'several objectives {hits}'
            raise ValueError(f'loss {loss_name!r} is assigned to {where}; '
                             f'objectives = {dict(self.objectives)}')
        return hits[0]

    # ------------------------------------------------------------ forward
    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor',
                teacher_features: Optional[Dict[str, torch.Tensor]] = None):
        """``'loss'``: every individual loss (unweighted) by name, from the
        teacher's tapped features (given, or computed here); ``'predict'`` /
        ``'tensor'``: the student's (or the teacher's) output."""
        if mode == 'loss':
            if teacher_features is None:
                teacher_features = self.run_teacher(inputs, data_samples)
            return self._losses(inputs, data_samples, teacher_features)
        if mode in ('predict', 'tensor'):
            model = self.student if self.predict_with == 'student' else self.teacher
            return model(inputs, data_samples, mode=mode)
        raise ValueError(f'invalid mode {mode!r}')

    def run_teacher(self, inputs, data_samples) -> Dict[str, torch.Tensor]:
        """The teacher's tapped features of a batch (no gradient)."""
        self._load_teacher_once()
        if not self._teacher_taps.specs:
            return {}
        with torch.no_grad():
            self.teacher(inputs, data_samples, mode='tensor')
        return self._teacher_taps.collect()

    def _losses(self, inputs, data_samples, teacher: Dict[str, torch.Tensor]):
        """All losses by name: ``student.<key>`` and ``distill.<name>``."""
        raw = self.student(inputs, data_samples, mode='loss')
        student = self._student_taps.collect()
        losses = OrderedDict((f'student.{k}', v) for k, v in raw.items())
        for name, loss in self.distill_losses.items():
            losses[f'distill.{name}'] = loss(student, teacher)
        return losses

    @staticmethod
    def _is_loss(key: str) -> bool:
        """Every distillation loss, and the student's outputs that its own
        library counts as losses (keys containing ``'loss'``; others, such
        as accuracies, are only logged)."""
        return key.startswith('distill.') or 'loss' in key

    def objectives_of(self, losses: Dict[str, torch.Tensor]):
        """Sum the losses into objectives.

        Returns:
            tuple[dict, dict]: ``{objective: scalar}`` and the log variables
            (every loss, every objective as ``objective.<name>``, and the
            student's non-loss outputs such as accuracies).
        """
        log_vars = OrderedDict()
        values = OrderedDict()
        for key, value in losses.items():
            if torch.is_tensor(value):
                values[key] = value.mean()
            elif isinstance(value, (list, tuple)) and all(torch.is_tensor(v) for v in value):
                values[key] = sum(v.mean() for v in value)
            else:
                raise TypeError(f'{key} is not a tensor or list of tensors')
        loss_keys = tuple(k for k in values if self._is_loss(k))
        if loss_keys not in self._assignment:
            self._assignment[loss_keys] = {k: self._objective_of(k) for k in loss_keys}
        assignment = self._assignment[loss_keys]
        objectives = OrderedDict((name, None) for name in self.objectives)
        for key, objective in assignment.items():
            total = objectives[objective]
            objectives[objective] = values[key] if total is None else total + values[key]
        empty = [name for name, value in objectives.items() if value is None]
        if empty:
            raise ValueError(f'objectives {empty} received no loss; the losses '
                             f'are {list(loss_keys)}')
        for key, value in values.items():
            log_vars[key] = value.detach()
        for name, value in objectives.items():
            log_vars[f'objective.{name}'] = value.detach()
        return objectives, log_vars

    def train_step(self, data, optim_wrapper, wrapper: Optional[nn.Module] = None
                   ) -> Dict[str, torch.Tensor]:
        """One step: the teacher once, the student's losses, the balanced
        update.

        Args:
            data: a batch from the dataloader.
            optim_wrapper (MoKDOptimWrapper): balances and applies the update.
            wrapper (nn.Module, optional): the distributed wrapper of this
                model (:class:`~mokd_mm.models.MoKDDistributedDataParallel`);
                the student's loss forward runs through it so that DDP's
                reducer averages the gradients.

        A rule that re-evaluates the objectives after the step
        (``needs_reevaluation``) gets them from the student on the same
        batch, reusing the teacher's features and leaving BatchNorm
        statistics and dropout untouched.
        """
        if not hasattr(optim_wrapper, 'balancer'):
            raise TypeError('MoKDDistiller trains with MoKDOptimWrapper (FixedWeights '
                            'gives a plain weighted sum), got '
                            f'{type(optim_wrapper).__name__}')
        model = self if wrapper is None else wrapper
        with optim_wrapper.optim_context(model):
            data = self.data_preprocessor(data, True)
            inputs, data_samples = data['inputs'], data['data_samples']
            teacher = self.run_teacher(inputs, data_samples)
            losses = model(inputs, data_samples, mode='loss', teacher_features=teacher)
        objectives, log_vars = self.objectives_of(losses)

        def reevaluate():
            with reevaluation_mode(self), optim_wrapper.optim_context(self):
                return self.objectives_of(self._losses(inputs, data_samples, teacher))[0]

        def explain():
            return self._non_finite_gradient_sources(inputs, data_samples, teacher)

        log_vars.update(optim_wrapper.update_params(
            objectives, reevaluate=reevaluate, explain=explain,
            losses={k: v for k, v in log_vars.items() if self._is_loss(k)}))
        return log_vars

    def _non_finite_gradient_sources(self, inputs, data_samples, teacher) -> str:
        """The losses of this batch whose own gradients are not finite (a
        diagnosis, run only after a non-finite update was refused)."""
        params = [p for p in self.parameters() if p.requires_grad]
        losses = self._losses(inputs, data_samples, teacher)
        keys = [k for k in losses if self._is_loss(k)]
        values = self.objectives_of(losses)[1]
        bad = []
        for i, key in enumerate(keys):
            value = losses[key]
            total = value.mean() if torch.is_tensor(value) else sum(v.mean() for v in value)
            grads = torch.autograd.grad(total, params, allow_unused=True,
                                        retain_graph=i < len(keys) - 1)
            if any(g is not None and not bool(torch.isfinite(g).all()) for g in grads):
                bad.append(f'{key} (value {float(values[key]):.4g}, objective '
                           f'{self._objective_of(key)!r})')
        return ', '.join(bad) or 'no single loss (only their weighted sum)'



def _load_teacher(teacher: nn.Module, path: str) -> None:
    """Load ``path`` into the teacher on the CPU, strictly and weights-only.

    The weights are the checkpoint's ``state_dict`` (MMEngine), its
    ``model`` (DeiT / timm training checkpoints, e.g. the published
    RegNetY-160 file, for a ``TimmClassifier`` teacher) or the checkpoint
    itself (a plain state dict).
    """
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'teacher_ckpt {path!r} does not exist (the teacher is loaded '
                                'when training starts)')
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    state = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            state = checkpoint[key]
            break
    try:
        load_state_dict(teacher, state, strict=True, logger='current')
    except RuntimeError as err:
        raise ValueError(f'teacher_ckpt {path!r} does not match the teacher: '
                         f'{err}') from None


def _check_same_normalisation(student_pre: nn.Module, teacher_pre: nn.Module) -> None:
    """The teacher sees the student's preprocessed batch; refuse teachers
    whose own preprocessing normalises differently."""
    for attr in ('mean', 'std', '_channel_conversion'):
        s, t = getattr(student_pre, attr, None), getattr(teacher_pre, attr, None)
        if s is None or t is None or any(torch.is_tensor(v) and v.is_meta for v in (s, t)):
            continue  # (a meta-device build, for sizes, has no values)
        same = torch.equal(s.cpu(), t.cpu()) if torch.is_tensor(s) else s == t
        if not same:
            raise ValueError(
                f'the teacher\'s data_preprocessor differs from the student\'s '
                f'in {attr!r} ({t} vs {s}); the teacher reads the student\'s '
                'preprocessed inputs, so give both models the same '
                'normalisation (or set the distiller\'s data_preprocessor)')
