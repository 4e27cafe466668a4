"""polydiff_timeseries: placeholder package, filled by its own issue."""
