"""polydiff_video: the video modality (filled by the "Video modality" issue; registers no hooks yet).

Importing it checks the ``video`` extra, so a missing extra shows as
``unavailable: ... pip install 'polydiff[video]'`` in ``polydiff plugins`` rather than failing later.
"""

from __future__ import annotations

import imageio  # noqa: F401  (the extra's dependency: writing clips)
import sklearn  # noqa: F401  (the extra's dependency: digits frames)
