"""What a generated world remembers from clip to clip, and what it conditions the next clip on.

* world_memory.py: :class:`~lv2_env.conditioning.world_memory.WorldMemory`, surfels of every frame shown, first
  look kept, rendered along the next path (the default conditioning); with the sky it keeps apart
  (sky_panorama.py), the world's fog it renders through (atmosphere.py) and the pixel-grid helpers it shares with
  the warp (raster.py);
* warp.py: a frame forward-warped along a path with its depth (the warp baseline, the last-frame conditioning,
  the rendered conditioning of training clips);
* point_cache.py: the start frame's depth lifted into a point cache on the ground plane, the depth the control
  signals of a world without a scene are built from;
* clip_conditioner.py: the conditioning policy and loop: start, condition each clip, remember what the world showed.

The control signals themselves, and the camera path they follow, are :mod:`lv2_env.signals`."""
