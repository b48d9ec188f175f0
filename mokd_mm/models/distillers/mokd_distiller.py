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

from mokd_mm.core import FeatureTaps, objective_gradients
from mokd_mm.core.reevaluation import frozen_norm_statistics, reevaluation_mode
from mokd_mm.engine import MoKDOptimWrapper, NonFiniteUpdateError

from .distill_loss import ROLES, DistillLoss
from .model_config import ModelSpec, load_model_config
from .objectives import Objectives, loss_value
from .student_checkpoint import adapt_student_keys
from .teacher import TeacherInputs, load_teacher_checkpoint


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
            with the student's; a teacher that normalises differently gets
            the batch converted to its own (:class:`.teacher.TeacherInputs`).
        predict_with (str): ``'student'`` (default) or ``'teacher'``.
        allow_partial_load (bool): load a checkpoint that holds only part of
            the student (``load_from``). By default every load must give the
            whole student, either as a distiller checkpoint or as a
            checkpoint of the student alone (e.g. a pretrained detector),
            which goes into the student with one log line.
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
        allow_partial_load: bool = False,
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
        # The teacher reads the batch the student's preprocessing made, converted.
        self.teacher_inputs = TeacherInputs(self.data_preprocessor, teacher_model.data_preprocessor)

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
        self.allow_partial_load = allow_partial_load
        self.register_load_state_dict_pre_hook(self._adapt_student_keys)

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

    @staticmethod
    def _adapt_student_keys(module, state_dict, prefix, local_metadata, *args) -> None:
        """Before any load: a checkpoint of the student alone goes into the
        student; one that would leave the student partly loaded is refused
        (:func:`.student_checkpoint.adapt_student_keys`)."""
        adapt_student_keys(
            state_dict,
            prefix,
            local_metadata,
            module.state_dict(),
            module.allow_partial_load,
        )

    def __deepcopy__(self, memo):
        """A copy (e.g. the moving average of MMEngine's ``EMAHook``) shares
        the frozen teacher instead of copying it: the teacher never changes,
        and a copy would only double its memory. Such copies evaluate the
        student; the teacher's taps stay with the original."""
        teacher = self._teacher
        for obj in (teacher, *teacher.modules(), *teacher.parameters(), *teacher.buffers()):
            memo[id(obj)] = obj
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

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
        inputs, data_samples = self.teacher_inputs(inputs, data_samples)
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
        """One step of the paper's loop (Algorithm 1): the teacher once, the
        student's losses grouped into objectives, the balanced backward
        pass, the optimizer step, and, for a rule that learns from it, the
        same batch again under the updated student (the teacher's features
        reused; BatchNorm statistics and dropout untouched), from which the
        balancer learns.

        Args:
            data: a batch from the dataloader.
            optim_wrapper (MoKDOptimWrapper): backward and step (mixed
                precision, accumulation, clipping, distributed averaging).
            wrapper (nn.Module, optional): the distributed wrapper of this
                model (:class:`~mokd_mm.models.MoKDDistributedDataParallel`);
                the student's loss forward runs through it so that DDP's
                reducer averages the gradients.
        """
        if not isinstance(optim_wrapper, MoKDOptimWrapper):
            raise TypeError(
                'MoKDDistiller trains with MoKDOptimWrapper (FixedWeights gives '
                f'a plain weighted sum), got {type(optim_wrapper).__name__}'
            )
        model = self if wrapper is None else wrapper
        with optim_wrapper.optim_context(model):
            data = self.data_preprocessor(data, True)
            inputs, samples = data['inputs'], data['data_samples']
            teacher = self.run_teacher(inputs, samples)
            losses = model(inputs, samples, mode='loss', teacher_features=teacher)
        objectives, log_vars = self.objectives.sum(losses)
        # Activation checkpointing recomputes forward passes during backward:
        # they must not update BatchNorm statistics a second time.
        with frozen_norm_statistics(self):
            values = optim_wrapper.backward(objectives, self._losses_only(losses))
        if optim_wrapper.should_update():
            try:
                stepped = optim_wrapper.step()
            except NonFiniteUpdateError as err:
                sources = self._non_finite_gradient_sources(inputs, samples, teacher)
                raise NonFiniteUpdateError(f'{err} Non-finite gradients come from: {sources}.')
            optim_wrapper.zero_grad()
            if stepped:
                after = after_losses = None
                if optim_wrapper.balancer.needs_reevaluation:
                    with reevaluation_mode(self), optim_wrapper.autocast():
                        after_losses = self.losses(inputs, samples, teacher)
                        after = self.objectives.sum(after_losses)[0]
                optim_wrapper.update_balancer(values, after, self._losses_only(after_losses))
        log_vars.update(optim_wrapper.log_vars())
        return log_vars

    def _losses_only(self, outputs: Optional[Dict]) -> Dict[str, torch.Tensor]:
        """The losses among a forward's outputs, as scalars."""
        return {
            k: loss_value(v).detach()
            for k, v in (outputs or {}).items()
            if self.objectives.is_loss(k)
        }

    def _non_finite_gradient_sources(self, inputs, data_samples, teacher) -> str:
        """The losses of this batch whose own gradients are not finite (a
        diagnosis, run only after a non-finite update was refused)."""
        params = [p for p in self.parameters() if p.requires_grad]
        losses = self.losses(inputs, data_samples, teacher)
        values = self.objectives.sum(losses)[1]
        keys = [k for k in losses if self.objectives.is_loss(k)]
        bad = []
        for i, key in enumerate(keys):
            grads = objective_gradients(
                [loss_value(losses[key])], params, retain_graph=i < len(keys) - 1
            )
            if not bool(grads.isfinite().all()):
                bad.append(
                    f'{key} (value {float(values[key]):.4g}, objective '
                    f'{self.objectives.objective_of(key)!r})'
                )
        return ', '.join(bad) or 'no single loss (only their weighted sum)'
