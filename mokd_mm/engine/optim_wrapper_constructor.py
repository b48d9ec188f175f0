"""Builds MoKDOptimWrapper with the objectives the model declares."""

from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MoKDOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`~mmengine.optim.DefaultOptimWrapperConstructor` (so
    ``paramwise_cfg`` works as usual) for :class:`MoKDOptimWrapper`:

    * the wrapper's ``objectives`` come from the model's ``objectives`` (as
      a :class:`~mokd_mm.models.MoKDDistiller` declares them), or must agree
      with them;
    * ``--amp`` of mmdet's and mmpretrain's own ``tools/train.py`` turns the
      config's wrapper type into ``AmpOptimWrapper``; this constructor
      builds a float16 :class:`MoKDOptimWrapper` instead (one log line says
      so), keeping the balancer;
    * the wrapper learns the parameters' names, for its error messages.
    """

    def __call__(self, model):
        module = model.module if is_model_wrapper(model) else model
        cfg = self.optim_wrapper_cfg
        if cfg.get('type') == 'AmpOptimWrapper':
            cfg['type'] = 'MoKDOptimWrapper'
            cfg.setdefault('dtype', 'float16')
            print_log(
                f'--amp: MoKDOptimWrapper with dtype={cfg["dtype"]!r} and loss_scale='
                f'{cfg.get("loss_scale", "dynamic")!r} instead of AmpOptimWrapper',
                logger='current',
            )
        declared = getattr(module, 'objectives', None)
        if declared is not None:
            declared = list(declared)
            configured = cfg.get('objectives')
            if configured is None:
                cfg['objectives'] = declared
            elif list(configured) != declared:
                raise ValueError(
                    f'optim_wrapper.objectives={list(configured)} but the model declares '
                    f'objectives {declared}; they must be the same, in the same order (or '
                    'leave optim_wrapper.objectives unset)'
                )
        wrapper = super().__call__(model)
        if hasattr(wrapper, 'param_names'):
            wrapper.param_names = {id(p): n for n, p in module.named_parameters()}
        return wrapper
