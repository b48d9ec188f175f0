# A short iteration-based schedule for the synthetic shape set.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=300, by_epoch=False)]
train_cfg = dict(by_epoch=False, max_iters=300, val_interval=100)
val_cfg = dict()
test_cfg = dict()
log_processor = dict(by_epoch=False)
# One process x 16 images; the learning rate above is for that batch.
auto_scale_lr = dict(base_batch_size=16)
