"""polydiff_audio: placeholder package, filled by its own issue."""
