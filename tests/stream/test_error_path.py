"""The one error path from the core to Python: classes, positions, carried Python exceptions."""

from __future__ import annotations

import gzip
import io
import lzma
import re
import traceback
from pathlib import Path

import pytest
from tarfixtures import make_tar, samples_members

import ppwebdataset as wds
from ppwebdataset import _core, errors
from ppwebdataset.tariterators import tarfile_samples

BINDING = Path(__file__).resolve().parents[2] / "rust" / "ppwds-python" / "src"


def binding_class_names():
    """Every quoted `...Error` name in the binding's sources: the classes it looks up by name."""
    names = set()
    for src in BINDING.glob("*.rs"):
        names.update(re.findall(r'"([A-Z][A-Za-z]*Error)"', src.read_text()))
    return names


def test_every_class_the_binding_raises_exists_in_errors_py():
    table = set(_core._error_classes())
    found = binding_class_names()
    # The table in errors.rs is what the binding maps kinds to; nothing else names a class.
    assert table and found == table
    for name in table:
        cls = getattr(errors, name, None)
        assert isinstance(cls, type) and issubclass(cls, errors.ShardError), name
        assert name in errors.__all__ and getattr(wds.errors, name) is cls


def test_formerly_placeholder_offset_is_none_and_said_unknown(tmp_path):
    # Refusing a compressed shard is about the whole file: it used to claim byte offset 0.
    path = make_tar(tmp_path / "a.tar", samples_members(2))
    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(errors.UnsupportedMemberError) as info:
        _core.ShardIndex(str(gz))
    assert info.value.url == str(gz) and info.value.offset is None
    assert "position unknown" in str(info.value) and "byte offset" not in str(info.value)


def test_real_offsets_are_kept(tmp_path):
    path = make_tar(tmp_path / "t.tar", [("a.txt", b"x" * 100), ("b.txt", b"y" * 3000)])
    path.write_bytes(path.read_bytes()[: 512 * 3 + 200])
    with pytest.raises(errors.TruncatedShardError) as info:
        list(wds.WebDataset(str(path), shardshuffle=False))
    assert info.value.offset == 1024 and "byte offset 1024" in str(info.value)


class Boom(Exception):
    pass


class FailingStream:
    """A file object whose read raises after `good` bytes."""

    def __init__(self, data, good):
        self.b = io.BytesIO(data)
        self.good = good

    def read(self, n=-1):
        if self.b.tell() >= self.good:
            raise Boom("the disk went away")
        return self.b.read(min(n, self.good - self.b.tell()))


def frames(exc):
    return [f.name for f in traceback.extract_tb(exc.__traceback__)]


@pytest.mark.parametrize("compress", [None, gzip.compress, lzma.compress])
def test_a_python_stream_error_reaches_the_user_unchanged(tmp_path, compress):
    data = make_tar(tmp_path / "s.tar", samples_members(50)).read_bytes()
    if compress:
        data = compress(data)
    stream = FailingStream(data, len(data) // 2)
    with pytest.raises(Boom, match="the disk went away") as info:
        list(tarfile_samples([dict(url="mem://s", stream=stream)]))
    assert type(info.value) is Boom and "read" in frames(info.value)


def test_a_failing_lzma_decoder_reaches_the_user_unchanged(tmp_path, monkeypatch):
    xz = tmp_path / "s.tar.xz"
    xz.write_bytes(lzma.compress(make_tar(tmp_path / "s.tar", samples_members(3)).read_bytes()))

    def no_decoder():
        raise Boom("no lzma here")

    # Starting the decoder used to fail as "no xz decoder available", hiding the cause.
    monkeypatch.setattr(lzma, "LZMADecompressor", no_decoder)
    with pytest.raises(Boom, match="no lzma here") as info:
        list(wds.WebDataset(str(xz), shardshuffle=False))
    assert "no_decoder" in frames(info.value)
    with pytest.raises(Boom):
        _core.scan_shard(str(xz))


def test_a_failing_name_filter_reaches_the_user_unchanged(tmp_path):
    path = make_tar(tmp_path / "s.tar", samples_members(3))

    def rename(name):
        raise Boom(f"cannot rename {name}")

    with pytest.raises(Boom, match="cannot rename s0000") as info:
        list(wds.WebDataset(str(path), shardshuffle=False, rename_files=rename))
    assert "rename" in frames(info.value)


def test_os_errors_keep_errno_class_and_name_the_file(tmp_path):
    missing = tmp_path / "nope.tar"
    raisers = [
        (lambda: _core.TarSampleReader(str(missing), "u://nope"), "u://nope"),
        (lambda: _core.ShardIndex(str(missing), url="u://nope"), str(missing)),
        (lambda: _core.scan_shard(str(missing), "u://nope"), str(missing)),
        (lambda: _core.lint_shard(str(missing)), str(missing)),
    ]
    for raiser, filename in raisers:
        with pytest.raises(FileNotFoundError) as info:
            raiser()
        assert info.value.errno == 2 and info.value.filename == filename
        assert "shard" in str(info.value)
