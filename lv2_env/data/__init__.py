"""Training-data builders, writing the one clip format of :mod:`model.clips`: from the procedural worlds
(procedural.py) and from a folder of your own videos (user_videos.py); and what World-v0's VAE encoder sees, for
distilling the control encoder (encoder_pairs.py)."""
