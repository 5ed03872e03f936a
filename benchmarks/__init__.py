"""The workbench: scripts that time and check vssd_mm (kernels compiled ahead of time,
launch-setting tuning, op / model / deployment / ablation / main-job benchmarks, the GPU
machine's scripts).

Not part of the installed package. Run the scripts from the repository root
(``python -m benchmarks.op_speed``); ``support/`` holds what they share, including the release's
forward written independently of our layers (``support/release_forward.py``), which the tests use
as their oracle.
"""
