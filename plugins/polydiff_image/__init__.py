"""polydiff_image: placeholder package, filled by its own issue."""
