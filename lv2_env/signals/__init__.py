"""What an action becomes: a camera path (actions.py, camera.py), stopped by the collision rule (collision.py),
then LongVie 2's control signals (control.py), and the warps and point cache that condition a clip (warp.py,
point_cache.py)."""
