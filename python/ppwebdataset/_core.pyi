# Type stub for the native module built from rust/ppwds-python (hand-written; kept in step with
# the runtime by tests/typing/test_core_stub.py). Shard damage raises the classes of
# ppwebdataset.errors: TruncatedShardError, CorruptShardError, UnsupportedMemberError,
# DuplicateMemberError (all ShardError subclasses naming url, member and offset).

import os
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, Literal, NotRequired, Self, TypedDict, final, overload

__version__: str
__all__ = [
    "__version__",
    "TarSampleReader",
    "ShuffleBuffer",
    "TarEncoder",
    "ShardIndex",
    "split_key",
    "is_meta",
    "wids_split",
    "scan_shard",
    "lint_shard",
    "ImageJob",
    "decode_images",
    "start_decode_images",
    "_panic_guard_selftest",
    "_error_classes",
]

_StrPath = str | os.PathLike[str]

@final
class TarSampleReader:
    """Iterates the samples (or raw members with ``group=False``) of one tar shard.

    Raises ``OSError`` (``FileNotFoundError`` ...) when a path cannot be opened, ``TypeError``
    for a source that is neither a path nor a binary file-like object, and ``ShardError``
    subclasses from :meth:`next_batch` for damaged data.
    """

    def __new__(
        cls,
        source: _StrPath | BinaryIO | Any,
        url: object,
        local_path: object | None = None,
        *,
        select_files: Callable[[str], bool] | None = None,
        rename_files: Callable[[str], str] | None = None,
        group: bool = True,
        ignore_zeros: bool = False,
    ) -> Self: ...
    def next_batch(self) -> list[Any]:
        """The next samples (dicts) or ``(name, bytes)`` members; an empty list at the end."""
    def close(self) -> None: ...
    @property
    def done(self) -> bool: ...
    @property
    def compressed(self) -> bool: ...

@final
class ShuffleBuffer:
    """A seeded, bounded shuffle buffer; the order depends only on ``seed`` and the input."""

    def __new__(cls, bufsize: int, initial: int, seed: int) -> Self: ...
    def __len__(self) -> int: ...
    def push(self, item: Any) -> list[Any]: ...
    def push_many(self, items: Iterable[Any]) -> list[Any]: ...
    def drain(self) -> list[Any]: ...
    def pop(self) -> Any | None: ...
    def clear(self) -> None: ...
    @property
    def bufsize(self) -> int: ...
    @property
    def initial(self) -> int: ...

@final
class TarEncoder:
    """Encodes sample dicts as tar members onto a binary stream.

    Raises ``TypeError`` for a stream without ``write`` or an unencodable value, ``ValueError``
    for a bad sample (no ``__key__``, a write after ``finish()``); errors of ``stream.write``
    propagate unchanged.
    """

    def __new__(
        cls,
        stream: Any,
        *,
        user: str = "bigdata",
        group: str = "bigdata",
        mode: int = 0o444,
        mtime: int | None = None,
        keep_meta: bool = False,
        handlers: dict[str, Callable[[Any], bytes]] | None = None,
        int_encoder: Callable[[Any], bytes] | None = None,
        buffer_size: int = ...,  # 1 MiB
        zero_copy: bool = False,
    ) -> Self: ...
    def write(self, sample: dict[str, Any]) -> int: ...
    def flush(self) -> None: ...
    def finish(self) -> None: ...
    @property
    def bytes_written(self) -> int: ...
    @property
    def finished(self) -> bool: ...

@final
class ShardIndex:
    """Random access to the samples of one local, uncompressed tar shard.

    Raises ``OSError`` subclasses when the file cannot be opened and ``ShardError`` subclasses
    when its headers are damaged; ``IndexError`` for a sample index out of range and
    ``ValueError`` after :meth:`close`.
    """

    def __new__(cls, path: _StrPath, *, sidecar: _StrPath | None = None, url: str | None = None) -> Self: ...
    def __len__(self) -> int: ...
    def check_duplicates(self) -> None:
        """Raise ``DuplicateMemberError`` for the first sample that repeats an extension."""
    def keys(self) -> list[str]: ...
    def key(self, i: int) -> str: ...
    def members(self, i: int) -> list[tuple[str, str, int, int]]: ...
    def duplicates(self) -> list[tuple[int, str]]: ...
    @overload
    def get_sample(self, i: int, *, views: Literal[False] = False) -> dict[str, Any]: ...
    @overload
    def get_sample(self, i: int, *, views: bool) -> dict[str, Any]: ...
    def dataset_sample(self, i: int, dataset: Any, index: int, shard_url: str) -> dict[str, Any]:
        """``get_sample(i)`` plus ``__dataset__``, ``__index__``, ``__shard__`` and ``__shardindex__``."""
    def close(self) -> None: ...
    @property
    def url(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def file_size(self) -> int: ...
    @property
    def from_sidecar(self) -> bool: ...
    @property
    def sidecar_error(self) -> str | None: ...
    @property
    def skipped(self) -> int: ...
    @property
    def nmembers(self) -> int: ...
    @property
    def closed(self) -> bool: ...

def split_key(name: str) -> tuple[str, str] | tuple[None, None]:
    """``"dir/a.seg.jpg"`` → ``("dir/a", "seg.jpg")``; ``(None, None)`` without a split."""

def is_meta(name: str) -> bool:
    """True for ``__name__`` files and ``__dir__/...`` trees, which join no sample."""

def wids_split(name: bytes) -> int | None:
    """The wids split of a UTF-8 name: the key's length in bytes, ``None`` without a dot."""

class _ScanReport(TypedDict):
    compression: str
    file_size: int
    tar_bytes: int
    members: int
    samples: int
    skipped: int
    extensions: dict[str, tuple[int, int, int, int]]
    first_keys: list[str]
    issues: list[tuple[str, str, str, str | None, int | None]]
    suppressed: dict[str, int]
    member_list: NotRequired[list[tuple[str, int, int]]]  # with members=True

def scan_shard(path: _StrPath, url: str | None = None) -> int:
    """Read a local shard to its end-of-archive marker (compressed ones to the end of the stream)
    and return its member count: the cache's proof that a download is whole. Raises the
    ``ShardError`` subclasses for damage and ``OSError`` when the file cannot be opened."""

def lint_shard(
    path: _StrPath,
    *,
    max_member_size: int | None = None,
    members: bool = False,
    first_keys: int = 5,
    max_issues: int = 20,
) -> _ScanReport:
    """One pass over a local shard for ``ppwebdataset lint``/``inspect``; damage is reported in
    ``issues``, not raised. Raises ``OSError`` when the file cannot be opened."""

_ImageResult = tuple[int, int, int, bytearray] | str

def decode_images(
    items: list[bytes],
    mode: Literal["L", "RGB", "RGBA"],
    resize: int | None = None,
    crop: tuple[int, int] | None = None,
    seeds: list[tuple[int, int]] | None = None,
    filter: Literal["bicubic", "bilinear"] = "bicubic",
    threads: int = 1,
) -> list[_ImageResult]:
    """Decode JPEG/PNG ``items`` into ``mode`` on ``threads`` threads without the GIL, optionally
    resizing the shorter side to ``resize`` and cutting a ``crop`` window (centred, or at offsets
    drawn from ``seeds``). One entry per item, in order: ``(height, width, channels, pixels)`` or
    the error message. Raises ``ValueError`` for bad arguments, ``RuntimeError`` if the decoder
    panicked."""

def start_decode_images(
    items: list[bytes],
    mode: Literal["L", "RGB", "RGBA"],
    resize: int | None = None,
    crop: tuple[int, int] | None = None,
    seeds: list[tuple[int, int]] | None = None,
    filter: Literal["bicubic", "bilinear"] = "bicubic",
    threads: int = 1,
) -> ImageJob:
    """Like :func:`decode_images`, but returns at once; the work runs on Rust threads."""

@final
class ImageJob:
    """A window being decoded in the background by :func:`start_decode_images`."""

    def result(self) -> list[_ImageResult]:
        """Wait for the window and return what :func:`decode_images` would have (only once;
        a second call raises ``RuntimeError``)."""

def _panic_guard_selftest(url: str) -> None:
    """Test hook: panics inside the binding's guard, which must raise ``CorruptShardError``
    naming ``url`` (never pyo3's ``PanicException``)."""

def _error_classes() -> list[str]:
    """Test hook: the ``ppwebdataset.errors`` classes the binding raises, by name."""
