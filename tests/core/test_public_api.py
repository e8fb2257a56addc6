"""Every name the top-level package promises resolves to a real object."""

from __future__ import annotations

import notellm


def test_every_export_resolves():
    for name in notellm.__all__:
        assert getattr(notellm, name) is not None, name


def test_unknown_name_is_an_attribute_error():
    try:
        notellm.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
