"""Scoring generated video against the truth, beside model-free baselines: single clips (clips.py), long
rollouts (rollouts.py), the reports and picture grids both write (report.py), the settings of ``lv2 eval``
(settings.py). The metrics themselves are :mod:`model.metrics`, shared with training."""
