# MoKD, WRN-40-2 (teacher) -> WRN-40-1 (student) on CIFAR-100:
# appendix C.5, Table 1, column 2 (MoKD 75.54 top-1).
# Teacher: your own WRN-40-2, trained with
# configs/cifar100/wrn-40-2_cifar100.py; tools/train.py writes
# work_dirs/wrn-40-2_cifar100/epoch_240.pth. Point elsewhere with
# --cfg-options model.teacher_ckpt=PATH.
_base_ = ['./_base_/cifar100_mokd.py']

model = dict(
    student='{{fileDirname}}/../../cifar100/wrn-40-1_cifar100.py',
    teacher='{{fileDirname}}/../../cifar100/wrn-40-2_cifar100.py',
    teacher_ckpt='work_dirs/wrn-40-2_cifar100/epoch_240.pth',
)
