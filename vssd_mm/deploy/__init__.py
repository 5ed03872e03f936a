"""Deployment: ONNX export of a config's model (``onnx_export.py``; the config's data preprocessor
as part of the graph: ``preprocessing.py``; needs the ``[deploy]`` extra: onnx, onnxruntime,
onnxscript)."""
