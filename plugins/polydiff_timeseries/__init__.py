"""polydiff_timeseries: the time-series modality (filled by the "Time-series modality" issue; registers
no hooks yet).

Importing it checks the ``timeseries`` extra, so a missing extra shows as
``unavailable: ... pip install 'polydiff[timeseries]'`` in ``polydiff plugins`` rather than failing later.
"""

from __future__ import annotations

import pandas  # noqa: F401  (the extra's dependency: loading series)
import statsmodels  # noqa: F401  (the extra's dependency: baselines, autocorrelation metrics)
