"""Member-level access to a memory-mapped tar (the ``MMIndexedTar`` interface of wids).

Every regular member is listed by its full name (ustar prefix, GNU long
names, pax paths), in archive order, as upstream does: members without an
extension and metadata members count too. Duplicate names never shift the
data returned for other members.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile

from ppwebdataset import _locks
from ppwebdataset._core import ShardIndex


class MMIndexedTar:
    """The members of one local tar file, by position or by name.

    ``index_file`` is an optional sidecar index path (reused while the tar is unchanged).
    ``by_index`` holds ``(name, data_offset, size)``; ``by_name`` maps a name to its
    last position (a later duplicate wins, as when the tar is unpacked).
    """

    def __init__(self, fname, index_file=None, verbose=True, cleanup_callback=None):
        self.verbose = verbose
        self.cleanup_callback = cleanup_callback
        if isinstance(fname, (str, os.PathLike)):
            self.fname = os.fspath(fname)
            self.stream = open(self.fname, "rb")
        else:
            self.stream = fname
            self.fname = getattr(fname, "name", None)
            if not isinstance(self.fname, str):
                raise TypeError("MMIndexedTar needs a path or a file opened from a path")
        if cleanup_callback:
            cleanup_callback(self.fname, self.stream.fileno(), "start")
        self.index = ShardIndex(self.fname, sidecar=index_file)
        if self.index.skipped == 0:
            self.by_index = [
                (name, off, size) for i in range(len(self.index)) for name, _, off, size in self.index.members(i)
            ]
        else:
            # The sample index leaves out members that join no sample (no extension,
            # metadata); upstream lists every regular member, so scan the headers.
            self.by_index = _scan_regular_members(self.fname)
        self.by_name = {name: i for i, (name, _, _) in enumerate(self.by_index)}

    def close(self, dispose=False):
        if self.cleanup_callback:
            self.cleanup_callback(self.fname, self.stream.fileno(), "end")
        self.index.close()
        self.stream.close()

    def names(self):
        """All member names in archive order (duplicates included)."""
        return [name for name, _, _ in self.by_index]

    def get_at_offset(self, offset):
        """``(name, bytes)`` of the member whose data starts at ``offset``."""
        for name, off, size in self.by_index:
            if off == offset:
                return name, self._read(off, size)
        raise KeyError(f"no member data starts at offset {offset}")

    def _read(self, offset, size):
        self.stream.seek(offset)
        data = self.stream.read(size)
        if len(data) != size:
            raise OSError(f"{self.fname}: member at offset {offset} is cut short")
        return data

    def get_at_index(self, index):
        name, offset, size = self.by_index[index]
        return name, self._read(offset, size)

    def get_by_name(self, name):
        return self.get_at_index(self.by_name[name])

    def __iter__(self):
        for name, offset, size in self.by_index:
            yield name, self._read(offset, size)

    def __getitem__(self, key):
        if isinstance(key, int):
            return self.get_at_index(key)
        return self.get_by_name(key)

    def __len__(self):
        return len(self.by_index)

    def get_file(self, i):
        """``(name, BytesIO)`` of member ``i``."""
        fname, data = self.get_at_index(i)
        return fname, io.BytesIO(data)


def _scan_regular_members(fname):
    try:
        with tarfile.open(fname, "r:") as tf:
            return [(m.name, m.offset_data, m.size) for m in tf if m.isreg()]
    except tarfile.TarError as exn:
        raise ValueError(f"{fname}: not a readable tar file: {exn}") from exn


def keep_while_reading(fname, fd, phase, delay=0.0):
    """A ``cleanup_callback`` that deletes a file once its last reader closes it.

    Readers hold a shared ``flock`` while reading; at the end, whoever can take an
    exclusive lock is the last reader and unlinks the file.
    """
    if delay != 0.0:
        raise ValueError("delay is not supported")
    if fd < 0 or fname is None or not _locks.AVAILABLE:
        return
    if phase == "start":
        _locks.flock(fd, shared=True)
    elif phase == "end":
        if _locks.flock(fd, blocking=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(fname)
    else:
        raise ValueError(f"Unknown phase {phase}")


__all__ = ["MMIndexedTar", "keep_while_reading"]
