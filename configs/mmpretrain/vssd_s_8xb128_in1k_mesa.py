# VSSD-Small trained with MESA, as the release's vssd_small_e300_with_mesa.pth (reported top-1
# 84.5): vssd_s_8xb128_in1k.py plus self-distillation from the EMA model from epoch 76 of 300
# on, loss + 1.5 * SoftTargetCE(logits, softmax(EMA logits)) on the same mixed batch
# (vssd_mm/models/mesa.py). The weight is the release's yaml comment for small.
_base_ = './vssd_s_8xb128_in1k.py'

model = dict(type='MESAClassifier')
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL'),
    dict(type='MESAHook', weight=1.5, start_ratio=0.25),
]
