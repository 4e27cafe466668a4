"""The conformance kit: one-line property checks for plugin test suites.

>>> from polydiff.testing import check_modality, check_backbone, check_equivariance, check_sampler
>>> check_modality("points", dataset_options={"n": 64})  # doctest: +SKIP

Each check raises :class:`AssertionError` with a message naming the property that fails and
returns the measured errors (or a small report) when it passes.
"""

from __future__ import annotations

from ._backbone import check_backbone
from ._equivariance import check_equivariance, random_rotation
from ._modality import check_modality
from ._prior_fill import check_prior_fill
from ._sampler import check_sampler

__all__ = ["check_backbone", "check_equivariance", "check_modality", "check_prior_fill", "check_sampler",
           "random_rotation"]
