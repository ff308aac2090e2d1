"""Training LongVie 2 models: the run settings and stage registry (config.py), the shared loop (loop.py),
cached VAE latents (latents.py), the degradations (degradation.py) and one module per kind of stage
(vae_stage.py, dit_stage.py, depth_stage.py).

The stages, in the order ``lv2 train all`` runs them, with their kinds and default budgets, are the registry
:data:`model.training.config.STAGES` (torch-free: ``lv2 train`` reads it for its choices and defaults);
:mod:`model.training.stages` builds any of them by name and runs them all.
"""
