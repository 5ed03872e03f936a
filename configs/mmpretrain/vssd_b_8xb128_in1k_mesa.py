# VSSD-Base trained with MESA, as the release's vssd_base_e300_with_mesa.pth (reported top-1
# 85.4): vssd_b_8xb128_in1k.py plus self-distillation from the EMA model from epoch 76 of 300
# on, loss + 2.0 * SoftTargetCE(logits, softmax(EMA logits)) on the same mixed batch
# (vssd_mm/models/mesa.py). The weight is the release's yaml comment for base.
_base_ = './vssd_b_8xb128_in1k.py'

model = dict(type='MESAClassifier')
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL'),
    dict(type='MESAHook', weight=2.0, start_ratio=0.25),
]
