# Plain KD baseline, ResNet-32x4 (teacher) -> ShuffleNet-V1 (student) on
# CIFAR-100 (appendix C.5, Table 1, column 5).
# Teacher: your own ResNet-32x4, trained with
# configs/cifar100/resnet32x4_cifar100.py; tools/train.py writes
# work_dirs/resnet32x4_cifar100/epoch_240.pth. Point elsewhere with
# --cfg-options model.teacher_ckpt=PATH.
_base_ = ['./_base_/cifar100_kd.py']

model = dict(
    student='{{fileDirname}}/../../cifar100/shufflenetv1_cifar100.py',
    teacher='{{fileDirname}}/../../cifar100/resnet32x4_cifar100.py',
    teacher_ckpt='work_dirs/resnet32x4_cifar100/epoch_240.pth',
)
# The student's own recipe (configs/cifar100/shufflenetv1_cifar100.py).
optim_wrapper = dict(optimizer=dict(lr=0.01))
