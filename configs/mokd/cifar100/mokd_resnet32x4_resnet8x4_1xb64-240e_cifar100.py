# MoKD, ResNet-32x4 (teacher) -> ResNet-8x4 (student) on CIFAR-100:
# appendix C.5, Table 1, column 3 (MoKD 76.34 top-1).
# Teacher: your own ResNet-32x4, trained with
# configs/cifar100/resnet32x4_cifar100.py; tools/train.py writes
# work_dirs/resnet32x4_cifar100/epoch_240.pth. Point elsewhere with
# --cfg-options model.teacher_ckpt=PATH.
_base_ = ['./_base_/cifar100_mokd.py']

model = dict(
    student='{{fileDirname}}/../../cifar100/resnet8x4_cifar100.py',
    teacher='{{fileDirname}}/../../cifar100/resnet32x4_cifar100.py',
    teacher_ckpt='work_dirs/resnet32x4_cifar100/epoch_240.pth',
)
