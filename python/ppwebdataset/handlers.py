"""Error handlers for pipeline stages.

A handler receives the exception and returns True to skip the failing item and
go on, False to end the stage quietly, or raises to propagate. Unlike upstream,
the ``warn_*`` handlers do not sleep.
"""

from __future__ import annotations

import warnings


def reraise_exception(exn):
    """Propagate the exception."""
    raise exn


def ignore_and_continue(exn):
    """Skip the failing item silently."""
    return True


def warn_and_continue(exn):
    """Warn with the exception's repr and skip the failing item."""
    warnings.warn(repr(exn), stacklevel=2)
    return True


def ignore_and_stop(exn):
    """End the stage silently."""
    return False


def warn_and_stop(exn):
    """Warn with the exception's repr and end the stage."""
    warnings.warn(repr(exn), stacklevel=2)
    return False


__all__ = [
    "reraise_exception",
    "ignore_and_continue",
    "warn_and_continue",
    "ignore_and_stop",
    "warn_and_stop",
]
