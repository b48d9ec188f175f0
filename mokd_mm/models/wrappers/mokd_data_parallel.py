"""A distributed model wrapper that lets the model run its own train_step.

MMEngine's ``MMDistributedDataParallel.train_step`` re-implements the
training step (forward, ``parse_losses``, one ``update_params(loss)``) and
never calls the model's ``train_step``, and DDP's reducer cannot serve the
several backward passes of MoKD's exact mode. This wrapper keeps the model
out of any reducer: it makes the initial parameters equal on every rank and
delegates every step to the model. :class:`~mokd_mm.engine.MoKDOptimWrapper`
averages gradients (and objectives) over processes itself.
"""
from mmengine import dist
from mmengine.registry import MODEL_WRAPPERS
from torch import nn


@MODEL_WRAPPERS.register_module()
class MoKDDistributedDataParallel(nn.Module):
    """Wrap a model whose ``train_step`` does its own communication.

    Use as ``model_wrapper_cfg=dict(type='MoKDDistributedDataParallel')``.

    Args:
        module (nn.Module): the model (e.g. a ``MoKDDistiller``), already on
            its device.
        broadcast_buffers (bool): also copy rank 0's buffers (BatchNorm
            statistics) once at start. Defaults to True.
    """

    def __init__(self, module: nn.Module, broadcast_buffers: bool = True):
        super().__init__()
        self.module = module
        tensors = list(module.parameters())
        if broadcast_buffers:
            tensors += list(module.buffers())
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
