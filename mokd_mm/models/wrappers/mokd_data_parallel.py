"""PyTorch's DDP around a model that runs its own training step.

MMEngine's ``MMDistributedDataParallel.train_step`` re-implements the
training step (forward, ``parse_losses``, one ``update_params(loss)``) and
never calls the model's ``train_step``. A :class:`~mokd_mm.models.MoKDDistiller`
needs its own step (the teacher's features, objectives instead of one loss,
a re-evaluation after the step), so this wrapper hands the step to the model
and lets it run the student's loss forward through DDP: the reducer then
averages the gradients of a weighted sum during the backward pass, as for
any model. Rules that take per-objective gradients switch the reducer off
for that forward (``MoKDOptimWrapper.optim_context``) and average the
gradients themselves, once.
"""

from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class MoKDDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` whose ``train_step`` is the model's.

    Use as ``model_wrapper_cfg=dict(type='MoKDDistributedDataParallel')``;
    other arguments are DDP's (e.g. ``find_unused_parameters``). On a CPU
    (gloo) run the ``device_ids`` MMEngine passes are dropped, as DDP
    requires for CPU modules.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        if device_ids is not None and all(p.device.type == 'cpu' for p in module.parameters()):
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper, wrapper=self)
