"""What a forward hook receives is what the layer computed: nothing overwrites a module's inputs
or outputs after the fact (feature extraction, distillation, CAM and FLOP tools read them there).
The reference is a copy each hook takes the moment it is called."""
import pytest
import torch
from torch.nn.modules.module import register_module_forward_hook

from vssd_mm.models import VSSD


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)


def _record(seen, name):
    def hook(module, args, output=None):
        seen.append((name, [(t, t.clone()) for t in _tensors(args if output is None else output)]))
    return hook


def _changed(seen):
    return sorted({name for name, pairs in seen for kept, copy in pairs
                   if not torch.equal(kept, copy)})


@pytest.mark.parametrize('grad', [False, True], ids=['no_grad', 'grad'])
def test_every_module_output_and_input_stays_as_its_hooks_received_it(grad):
    # the CPU's inference path writes element-wise steps in place (layout.TokenLayout.in_place):
    # before hooks turned it off, 160 of 285 module outputs of this model changed after return
    torch.manual_seed(0)
    model = VSSD(arch='micro', out_indices=(0, 1, 2, 3)).eval()
    image = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        plain = model(image)
    outputs, inputs = [], []
    for name, module in model.named_modules():
        module.register_forward_hook(_record(outputs, name))
        module.register_forward_pre_hook(_record(inputs, name))
    with torch.set_grad_enabled(grad):
        hooked = model(image)
    assert len(outputs) > 250 and len(inputs) == len(outputs)
    assert _changed(outputs) == [] and _changed(inputs) == []
    for got, want in zip(hooked, plain):  # the same numbers with and without hooks
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_global_module_hook_is_seen_too():
    torch.manual_seed(0)
    model = VSSD(arch='micro', out_indices=(3,)).eval()
    seen = []
    handle = register_module_forward_hook(
        lambda module, args, output: seen.append([(t, t.clone()) for t in _tensors(output)]))
    try:
        with torch.no_grad():
            model(torch.randn(1, 3, 64, 64))
    finally:
        handle.remove()
    assert seen and all(torch.equal(kept, copy) for pairs in seen for kept, copy in pairs)
