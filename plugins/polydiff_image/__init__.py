"""polydiff_image: the image modality (filled by the "Image modality" issue; registers no hooks yet).

Importing it checks the ``image`` extra, so a missing extra shows as
``unavailable: ... pip install 'polydiff[image]'`` in ``polydiff plugins`` rather than failing later.
"""

from __future__ import annotations

import sklearn  # noqa: F401  (the extra's dependency: digits dataset, metrics)
