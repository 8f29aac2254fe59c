"""Type aliases of the public API (for annotations only; nothing here runs at import time).

``Sample`` is one sample as the pipeline passes it on: a dict of ``"__key__"``, ``"__url__"``
and one entry per extension, until ``to_tuple``/``batched`` turn it into tuples or lists.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeAlias

Sample: TypeAlias = dict[str, Any]
"""One sample: ``{"__key__": str, "__url__": str, ".ext"-less extension: value, ...}``."""

Handler: TypeAlias = Callable[[Exception], bool]
"""Decides what an error does: return True to continue, False to stop, or raise."""

Stage: TypeAlias = Callable[[Iterable[Any]], Iterator[Any]]
"""A pipeline stage: a function from the previous iterator to the next one."""

StrPath: TypeAlias = str | os.PathLike[str]

Urls: TypeAlias = str | os.PathLike[str] | Iterable[str] | Iterable[dict[str, Any]] | dict[str, Any]
"""Shards: a URL or brace pattern, a directory URL ending in ``/``, a ``.yaml`` spec, a list of
URLs, a spec dict with ``datasets``, or an iterable dataset that yields ``{"url": ...}``."""

Predicate: TypeAlias = Callable[[Any], bool]

CollationFn: TypeAlias = Callable[[list[Any]], Any]

__all__ = ["CollationFn", "Handler", "Predicate", "Sample", "Stage", "StrPath", "Urls"]
