"""polydiff_video: placeholder package, filled by its own issue."""
