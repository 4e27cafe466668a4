"""Image plugin tests: skip without the ``image`` extra (the cache and thread settings are suite-wide:
tests/conftest.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")
