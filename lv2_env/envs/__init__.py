"""The Gymnasium classes: ``LV2/GroundTruth-v0`` (ground_truth.py), ``LV2/World-v0`` (world.py) and its vector env
(world_vector.py), over what they share (core.py: the camera world, its task and the info keys)."""
