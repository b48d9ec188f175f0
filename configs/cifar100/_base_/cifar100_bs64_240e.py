# CIFAR-100 recipe of the CRD / RepDistiller benchmark (CRD, ReviewKD, MoKD
# appendix C.5): batch 64 on one GPU, SGD lr 0.05, momentum 0.9, weight decay
# 5e-4, 240 epochs, lr x0.1 at epochs 150, 180 and 210. mmpretrain's CIFAR-100
# data and default runtime with the recipe's batch, evaluation and schedule;
# `cifar100_classifier.py` adds the classifier (and MobileNet / ShuffleNet
# students lower the lr to 0.01).
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True)
val_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True, dataset=dict(data_root='data/cifar100')
)
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# The recipe's lr belongs to a total batch of 64 (enable with --auto-scale-lr).
auto_scale_lr = dict(base_batch_size=64)

default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=10, max_keep_ckpts=3, save_best='accuracy/top1', rule='greater'),
)
