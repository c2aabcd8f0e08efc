"""The package's lazy public API (PEP 562)."""

from __future__ import annotations

import pytest

import sr_core


def test_every_public_name_resolves():
    assert sorted(sr_core.__all__) == sorted(["__version__", *sr_core._EXPORTS])
    for name in sr_core.__all__:
        assert getattr(sr_core, name) is not None
    assert sr_core.load_model is sr_core.model.load_model


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sr_core.nope  # noqa: B018
