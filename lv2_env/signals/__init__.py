"""What an action becomes: a camera path (actions.py, camera.py), stopped by the collision rule (collision.py),
then LongVie 2's control signals, dense depth and sparse point tracks (control.py).

What a clip is conditioned on besides them (the world memory, the point cache, the warps) is state the world keeps
from clip to clip: :mod:`lv2_env.conditioning`."""
