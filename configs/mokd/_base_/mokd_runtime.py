# What every MoKD config adds to the runtime of the student config it
# inherits. MMEngine refuses a key defined in two bases of one config, and the
# student's config already defines these keys, so this file holds variables
# that a setting base merges into its own keys:
#   custom_imports = {{_base_.mokd_imports}}
#   optim_wrapper = {{_base_.mokd_optim_wrapper}}
#   model_wrapper_cfg = {{_base_.mokd_model_wrapper}}
#   default_hooks = {{_base_.mokd_hooks}}
mokd_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)
# The student's optimizer stays; the wrapper balances the objectives
# (MoKD's amortized rule unless a method config picks another balancer).
mokd_optim_wrapper = dict(
    type='MoKDOptimWrapper',
    constructor='MoKDOptimWrapperConstructor',
    balancer=dict(type='MoKDAmortized'),
)
# DDP whose training step is the distiller's own (tools/dist_train.sh).
mokd_model_wrapper = dict(type='MoKDDistributedDataParallel')
# New checkpoint first, then last_checkpoint, then outdated ones removed.
mokd_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
