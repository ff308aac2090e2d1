"""Training-data builders, writing the one clip format of :mod:`model.clips`: from the procedural worlds
(procedural.py) and from a folder of your own videos (user_videos.py, which decodes them into shots with
video_shots.py and tracks points with point_tracks.py); and what World-v0's VAE encoder sees, for
distilling the control encoder (encoder_pairs.py)."""
