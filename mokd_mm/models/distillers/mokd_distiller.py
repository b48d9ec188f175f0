"""MoKDDistiller: a student trained from a frozen teacher, with its losses
grouped into objectives that :class:`~mokd_mm.engine.MoKDOptimWrapper`
balances."""

import copy
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from torch import nn

from mokd_mm.core import FeatureTaps
from mokd_mm.core.reevaluation import reevaluation_mode

from .distill_loss import ROLES, DistillLoss
from .model_config import ModelSpec, load_model_config
from .objectives import Objectives, loss_value
from .teacher import check_same_normalisation, load_teacher_checkpoint


@MODELS.register_module()
class MoKDDistiller(BaseModel):
    """Distil a student from a frozen teacher with MoKD.

    The losses of one training step are the student's own losses (named
    ``student.<key>``, e.g. ``student.loss_cls``) and the distillation losses
    (``distill.<name>``, one per entry of ``distill_losses``, see
    :class:`DistillLoss`). Each loss belongs to exactly one objective by the
    glob patterns of ``objectives`` (:class:`Objectives`); the objectives go
    to :class:`~mokd_mm.engine.MoKDOptimWrapper`, whose balancer weighs them.

    Distillation losses read features recorded by forward hooks at module
    paths of either model (``student_taps`` / ``teacher_taps``,
    :class:`~mokd_mm.core.FeatureTaps`), during training steps only.

    The teacher is frozen, always in eval mode and run under ``no_grad``. It
    is held outside this module's tree, so it is not in ``state_dict()``
    (checkpoints hold the student and the connectors), not in
    ``parameters()`` (hence not in the optimizer or DDP's reducer) and not
    touched by ``train()``; it still follows ``.to()`` / ``.cuda()``. Its
    weights are read when training starts.

    ``mode='predict'`` and ``'tensor'`` run the student alone (or the teacher,
    with ``predict_with='teacher'``), so validation and ``tools/test.py``
    evaluate the student.

    Args:
        student (dict | str): the student's model config, or a config file
            (path, or ``'mmdet::...'`` / ``'mmpretrain::...'``) whose ``model``
            is taken, or ``dict(config=file, **overrides)``.
        teacher (dict | str): the teacher, likewise.
        teacher_ckpt (str, optional): the teacher's checkpoint, loaded strictly
            on the CPU when training starts (the first ``train()`` or training
            step), so that testing and exporting the student need no teacher
            file. Without it the teacher keeps its initialisation (tests only).
        student_taps (dict, optional): tap name -> module path of the student,
            or ``dict(module=..., index=..., key=..., input=..., call=...)``
            (:class:`~mokd_mm.core.TapSpec`).
        teacher_taps (dict, optional): likewise for the teacher.
        distill_losses (dict, optional): loss name -> :class:`DistillLoss`
            config.
        objectives (dict, optional): objective name -> glob patterns over loss
            names. Defaults to ``dict(distill=['distill.*'],
            task=['student.*'])``.
        data_preprocessor (dict, optional): the preprocessing of both models
            where their configs set none (the Runner passes a config's
            top-level ``data_preprocessor`` here). The distiller preprocesses
            with the student's; the teacher must normalise the same way.
        predict_with (str): ``'student'`` (default) or ``'teacher'``.
        init_cfg (dict, optional): MMEngine init config.
    """

    def __init__(
        self,
        student: ModelSpec,
        teacher: ModelSpec,
        teacher_ckpt: Optional[str] = None,
        student_taps: Optional[dict] = None,
        teacher_taps: Optional[dict] = None,
        distill_losses: Optional[dict] = None,
        objectives: Optional[Dict[str, Sequence[str]]] = None,
        data_preprocessor: Optional[dict] = None,
        predict_with: str = 'student',
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg=init_cfg)
        if predict_with not in ROLES:
            raise ValueError(f"predict_with must be 'student' or 'teacher', got {predict_with!r}")
        self.predict_with = predict_with
        configs = {
            role: load_model_config(spec, role) for role, spec in zip(ROLES, (student, teacher))
        }
        if data_preprocessor is not None:
            for cfg in configs.values():
                cfg.setdefault('data_preprocessor', copy.deepcopy(data_preprocessor))
        self.student = MODELS.build(configs['student'])
        teacher_model = MODELS.build(configs['teacher']).requires_grad_(False).eval()
        # Outside the module tree on purpose: see the class docstring.
        object.__setattr__(self, '_teacher', teacher_model)
        self.teacher_ckpt = teacher_ckpt
        self._teacher_loaded = teacher_ckpt is None
        self.data_preprocessor = self.student.data_preprocessor
        check_same_normalisation(self.data_preprocessor, teacher_model.data_preprocessor)

        self.taps = dict(
            student=FeatureTaps(self.student, student_taps or {}, 'student'),
            teacher=FeatureTaps(teacher_model, teacher_taps or {}, 'teacher'),
        )
        self.distill_losses = nn.ModuleDict(
            (name, DistillLoss(name, cfg, self.taps['student'], self.taps['teacher']))
            for name, cfg in (distill_losses or {}).items()
        )
        self._check_every_tap_is_read()
        self._check_query_counts()
        self.objectives = Objectives(objectives)
        for name in self.distill_losses:
            self.objectives.objective_of(f'distill.{name}')

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
            load_teacher_checkpoint(self.teacher, self.teacher_ckpt)
            self._teacher_loaded = True

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self._teacher._apply(fn, *args, **kwargs)
        return self

    def _check_every_tap_is_read(self) -> None:
        for role in ROLES:
            read = set().union(*(loss.taps_read()[role] for loss in self.distill_losses.values()))
            unused = sorted(set(self.taps[role].specs) - read)
            if unused:
                raise ValueError(f'{role}_taps {unused} are read by no distillation loss')

    def _check_query_counts(self) -> None:
        """Query-based detectors (DETR family, ViDT's [DET] tokens) are
        distilled token by token, matched by index: their counts must agree."""
        counts = [getattr(m, 'num_queries', None) for m in (self.student, self.teacher)]
        if self.distill_losses and None not in counts and counts[0] != counts[1]:
            raise ValueError(
                f'student.num_queries={counts[0]} but teacher.num_queries={counts[1]}: '
                'distillation matches [DET] tokens / queries by index, so give both models '
                'the same num_queries'
            )

    # ------------------------------------------------------------ forward
    def forward(
        self,
        inputs: torch.Tensor,
        data_samples=None,
        mode: str = 'tensor',
        teacher_features: Optional[Dict[str, torch.Tensor]] = None,
    ):
        """``'loss'``: every individual loss (unweighted) by name, from the
        teacher's tapped features (given, or computed here); ``'predict'`` /
        ``'tensor'``: the student's (or the teacher's) output."""
        if mode == 'loss':
            if teacher_features is None:
                teacher_features = self.run_teacher(inputs, data_samples)
            return self.losses(inputs, data_samples, teacher_features)
        if mode in ('predict', 'tensor'):
            model = self.student if self.predict_with == 'student' else self.teacher
            return model(inputs, data_samples, mode=mode)
        raise ValueError(f'invalid mode {mode!r}')

    def run_teacher(self, inputs, data_samples) -> Dict[str, torch.Tensor]:
        """The teacher's tapped features of a batch (no gradient)."""
        self._load_teacher_once()
        if not self.taps['teacher'].specs:
            return {}
        with torch.no_grad(), self.taps['teacher'].recording():
            self.teacher(inputs, data_samples, mode='tensor')
            return self.taps['teacher'].collect()

    def losses(self, inputs, data_samples, teacher: Dict[str, torch.Tensor]) -> Dict:
        """All losses by name: ``student.<key>`` and ``distill.<name>``."""
        with self.taps['student'].recording():
            raw = self.student(inputs, data_samples, mode='loss')
            student = self.taps['student'].collect()
        losses = OrderedDict((f'student.{k}', v) for k, v in raw.items())
        for name, loss in self.distill_losses.items():
            losses[f'distill.{name}'] = loss(student, teacher)
        return losses

    def train_step(
        self, data, optim_wrapper, wrapper: Optional[nn.Module] = None
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
            raise TypeError(
                'MoKDDistiller trains with MoKDOptimWrapper (FixedWeights gives '
                f'a plain weighted sum), got {type(optim_wrapper).__name__}'
            )
        model = self if wrapper is None else wrapper
        with optim_wrapper.optim_context(model):
            data = self.data_preprocessor(data, True)
            inputs, data_samples = data['inputs'], data['data_samples']
            teacher = self.run_teacher(inputs, data_samples)
            losses = model(inputs, data_samples, mode='loss', teacher_features=teacher)
        objectives, log_vars = self.objectives.sum(losses)

        def reevaluate():
            with reevaluation_mode(self), optim_wrapper.optim_context(self):
                return self.objectives.sum(self.losses(inputs, data_samples, teacher))[0]

        def explain():
            return self._non_finite_gradient_sources(inputs, data_samples, teacher)

        log_vars.update(
            optim_wrapper.update_params(
                objectives,
                reevaluate=reevaluate,
                explain=explain,
                losses={k: v for k, v in log_vars.items() if self.objectives.is_loss(k)},
            )
        )
        return log_vars

    def _non_finite_gradient_sources(self, inputs, data_samples, teacher) -> str:
        """The losses of this batch whose own gradients are not finite (a
        diagnosis, run only after a non-finite update was refused)."""
        params = [p for p in self.parameters() if p.requires_grad]
        losses = self.losses(inputs, data_samples, teacher)
        values = self.objectives.sum(losses)[1]
        keys = [k for k in losses if self.objectives.is_loss(k)]
        bad = []
        for i, key in enumerate(keys):
            grads = torch.autograd.grad(
                loss_value(losses[key]), params, allow_unused=True, retain_graph=i < len(keys) - 1
            )
            if any(g is not None and not bool(torch.isfinite(g).all()) for g in grads):
                bad.append(
                    f'{key} (value {float(values[key]):.4g}, objective '
                    f'{self.objectives.objective_of(key)!r})'
                )
        return ', '.join(bad) or 'no single loss (only their weighted sum)'
