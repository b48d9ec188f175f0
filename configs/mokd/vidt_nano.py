# MoKD: ViDT-nano student, ViDT-base teacher, 50 epochs on COCO. The
# product's entry point (bash tools/dist_train.sh configs/mokd/vidt_nano.py 4);
# the config itself is vidt/mokd_vidt-base_vidt-nano_4xb4-50e_coco.py.
_base_ = ['./vidt/mokd_vidt-base_vidt-nano_4xb4-50e_coco.py']
