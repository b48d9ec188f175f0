# MoKD: ViDT-nano student, ViDT-small teacher,
# 50 epochs on COCO (Table 4).
_base_ = ['./_base_/vidt_mokd.py']
model = dict(
    teacher='{{fileDirname}}/../../vidt/vidt_swin-small_8xb2-50e_coco.py',
    teacher_ckpt='checkpoints/vidt_swin-small_coco.pth',
)
