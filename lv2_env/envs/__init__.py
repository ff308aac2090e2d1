"""lv2 Gymnasium environments."""
