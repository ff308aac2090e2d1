"""Training LongVie 2 models: shared loop (loop.py), data reading (data.py) and one module per stage.

Stages, in the order `lv2 train all` runs them: ``vae`` (the tiny preset's VAE), then the DiT stages.
"""

STAGES = ("vae",)
