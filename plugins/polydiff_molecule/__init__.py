"""polydiff_molecule: placeholder package, filled by its own issue."""
