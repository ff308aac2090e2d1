"""The LongVie 2 generator (VAE, control DiT, sampler, history) and its training.

This package never imports gymnasium, pygame or ``lv2_env``: training data from the procedural worlds reaches
it as files on disk. Its contents arrive with the generator issue; today it holds nothing.
"""
