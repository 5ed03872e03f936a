"""Deployment: ONNX export of a config's model (``onnx_export.py``; needs the ``[deploy]`` extra:
onnx, onnxruntime, onnxscript)."""
