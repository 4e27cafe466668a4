"""polydiff_molecule: the molecule modality (filled by the "Molecule modality" issue; registers no hooks yet).

Importing it checks the ``molecule`` extra, so a missing extra shows as
``unavailable: ... pip install 'polydiff[molecule]'`` in ``polydiff plugins`` rather than failing later.
"""

from __future__ import annotations

import e3nn  # noqa: F401  (the extra's dependency: equivariant backbones)
import rdkit  # noqa: F401  (the extra's dependency: chemistry, validity metrics)
