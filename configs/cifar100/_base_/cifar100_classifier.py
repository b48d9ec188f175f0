# A CIFAR-100 classifier on the CRD recipe: the network configs add only
# their backbone and the head's input channels.
_base_ = ['./cifar100_bs64_240e.py']
custom_imports = dict(imports=['mokd_mm.models.cifar'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ),
)
