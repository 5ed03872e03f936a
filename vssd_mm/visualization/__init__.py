"""What the visualisation tools draw: ``browse.py`` (``tools/browse_dataset.py``: a config's samples
as the pipeline delivers them, with their ground truth) and ``training_curves.py``
(``tools/analyze_logs.py``: loss, learning rate and validation metrics from mmengine's JSON logs).
Each module is imported by its tool alone (one pulls in mmdet/mmseg/mmpretrain, the other
matplotlib only)."""
