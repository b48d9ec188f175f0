"""Builds MoKDOptimWrapper with the objectives the model declares."""
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MoKDOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`~mmengine.optim.DefaultOptimWrapperConstructor` (so
    ``paramwise_cfg`` works as usual) that takes the wrapper's
    ``objectives`` from the model's ``objectives`` (as a
    :class:`~mokd_mm.models.MoKDDistiller` declares them), or checks that
    the configured ones agree, when the optimizer is built."""

    def __call__(self, model):
        module = model.module if is_model_wrapper(model) else model
        declared = getattr(module, 'objectives', None)
        if declared is not None:
            declared = list(declared)
            configured = self.optim_wrapper_cfg.get('objectives')
            if configured is None:
                self.optim_wrapper_cfg['objectives'] = declared
            elif list(configured) != declared:
                raise ValueError(
                    f'optim_wrapper.objectives={list(configured)} but the model '
                    f'declares objectives {declared}; they must be the same, '
                    'in the same order (or leave optim_wrapper.objectives unset)')
        return super().__call__(model)
