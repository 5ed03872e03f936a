"""Predictions on a user's images or video with a config and checkpoint (``tools/image_demo.py``):
the config's test pipeline and ``test_step``, drawn by the libraries' visualisers, written as
JSON."""
from .demo import DemoOptions, DemoResult, run_demo
from .predictor import Predictor

__all__ = ['DemoOptions', 'DemoResult', 'Predictor', 'run_demo']
