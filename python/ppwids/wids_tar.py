"""The ``TarFileReader`` interface of wids, on the same Rust index as ``MMIndexedTar``.

wids kept a pickled ``<shard>.index`` next to the shard; loading it could run
code. The index file here is ppwids' own binary format (checked against the
shard's size and modification time, rebuilt when stale or damaged).
"""

from __future__ import annotations

import os
import re

from .wids_mmtar import MMIndexedTar

INDEX_SUFFIX = ".ppwidx"


def find_index_file(file):
    """The sidecar index path for ``file`` (a ``._N_`` download suffix is ignored)."""
    prefix, last_ext = os.path.splitext(file)
    if re.match(r"^\._[0-9]+_$", last_ext):
        return prefix + INDEX_SUFFIX
    return file + INDEX_SUFFIX


class TarFileReader(MMIndexedTar):
    """Member access with a persistent sidecar index (``index_file=None`` disables it)."""

    def __init__(self, file, index_file=find_index_file, verbose=True):
        path = os.fspath(file) if isinstance(file, (str, os.PathLike)) else getattr(file, "name", None)
        if callable(index_file):
            index_file = index_file(path)
        self.index_file = index_file
        super().__init__(file, index_file=index_file, verbose=verbose)

    def __len__(self):
        return len(self.by_index)


__all__ = ["TarFileReader", "find_index_file"]
