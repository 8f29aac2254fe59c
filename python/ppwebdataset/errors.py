"""The exceptions ppwebdataset and ppwids raise.

Shard errors subclass :class:`tarfile.ReadError`, so ``except tarfile.ReadError``
clauses written for webdataset keep working, and carry ``url``, ``member`` and
``offset`` attributes that point at the damage.
"""

from __future__ import annotations

import tarfile


class PpwdsError(Exception):
    """Base class of every ppwebdataset / ppwids error."""


class ShardError(PpwdsError, tarfile.ReadError):
    """A shard could not be read.

    Attributes:
        url: the shard URL as given.
        member: the tar member involved, when known.
        offset: the byte offset in the (decompressed) tar stream, when known.
    """

    def __init__(self, message: str, *, url=None, member=None, offset=None):
        super().__init__(message)
        self.url = url
        self.member = member
        self.offset = offset


class TruncatedShardError(ShardError):
    """The shard ends inside a header, inside member data, or without its end marker."""


class CorruptShardError(ShardError):
    """A header checksum, number field, pax record or compressed block is invalid."""


class UnsupportedMemberError(ShardError):
    """A tar feature that cannot become sample data (sparse files)."""


class DuplicateMemberError(ShardError, ValueError):
    """Two members of one sample have the same extension (webdataset raised ValueError)."""


class UnsafeOperationError(PpwdsError, PermissionError):
    """An operation that can run code (pickle, shell pipes) was requested but is not enabled."""


class DecodingError(PpwdsError):
    """A sample field could not be decoded.

    Attributes:
        url: the shard URL of the sample, when known.
        key: the sample's ``__key__``.
        k: the field that failed.
        sample: the sample being decoded.
    """

    def __init__(self, url=None, key=None, k=None, sample=None, reason=None):
        message = f"Cannot decode field {k!r} of sample {key!r} from {url!r}"
        super().__init__(message + (f": {reason}" if reason else ""))
        self.url = url
        self.key = key
        self.k = k
        self.sample = sample


class ShardIndexError(PpwdsError):
    """A shard's index or descriptor does not match the shard (ppwids)."""


__all__ = [
    "PpwdsError",
    "ShardError",
    "TruncatedShardError",
    "CorruptShardError",
    "UnsupportedMemberError",
    "DuplicateMemberError",
    "UnsafeOperationError",
    "DecodingError",
    "ShardIndexError",
]
