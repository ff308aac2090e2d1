"""Video files (video.py: fragmented MP4 writing, decoding) and the pygame window (viewer.py)."""
