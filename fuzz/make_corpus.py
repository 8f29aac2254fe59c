"""Writes the seed corpus in fuzz/corpus/<target>/ (run from anywhere; stdlib only,
plus ppwebdataset._core for the sidecar seeds when it is importable).

tar_reader inputs are: mode byte, seed byte, payload (see fuzz/src/lib.rs). Mode bits:
0-1 source (0 plain, 1 gzip the payload, 2 bzip2 it, 3 as is), 2 ignore_zeros,
3 check_after_end, 4-7 big-member threshold.
"""

from __future__ import annotations

import bz2
import gzip
import io
import tarfile
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus"


def tar(members, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
        end = tf.offset
    # Keep the end marker, drop the record padding: small seeds fuzz faster.
    return buf.getvalue()[: end + 1024]


def checksum(block: bytearray) -> bytearray:
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    return block


def raw_header(name: bytes, size_field: bytes, typeflag: bytes) -> bytes:
    b = bytearray(512)
    b[: len(name)] = name
    b[100:107] = b"0000644"
    b[124:136] = size_field
    b[156:157] = typeflag
    b[257:263] = b"ustar\0"
    b[263:265] = b"00"
    return bytes(checksum(b))


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def samples(n, size=20):
    return [(f"s{i:03d}.{ext}", bytes([65 + i % 26]) * size) for i in range(n) for ext in ("cls", "txt")]


def main():
    good = tar(samples(5))
    pax_overflow = (
        raw_header(b"pax", b"%011o\0" % 38, b"x")
        + padded(b"13 path=a\nbc\n18446744073709551613 x=y\n")
        + raw_header(b"a.txt", b"%011o\0" % 1, b"0")
        + padded(b"x")
        + b"\0" * 1024
    )
    # Base-256 size 2^64 - 512: fits in 64 bits, overflows any offset added to it.
    huge = raw_header(b"b.bin", b"\x80\0\0\0" + (2**64 - 512).to_bytes(8, "big"), b"0")
    huge = tar([("a.cls", b"1")])[:1024] + huge + b"\0" * 2048
    zero_mid = bytearray(good)
    zero_mid[2048 : 2048 + 512] = b"\0" * 512  # the header of s002.cls
    flipped = bytearray(gzip.compress(good, compresslevel=0, mtime=0))
    flipped[flipped.index(b"AAAA")] ^= 1
    bad_crc = bytearray(gzip.compress(good, mtime=0))
    bad_crc[-8] ^= 1
    bad_len = bytearray(gzip.compress(good, mtime=0))
    bad_len[-1] ^= 1
    long_pax = tar([("d/" + "n" * 200 + ".bin", b"z" * 700), ("k.cls", b"1")], tarfile.PAX_FORMAT)
    long_gnu = tar([("d/" + "g" * 200 + ".bin", b"z" * 70)], tarfile.GNU_FORMAT)
    sparse = bytearray(tar([("s.bin", b"q" * 10)], tarfile.GNU_FORMAT))
    sparse[156:157] = b"S"
    sparse[:512] = checksum(bytearray(sparse[:512]))
    dup = tar([("a.cls", b"1"), ("a.cls", b"2"), ("b.cls", b"3")])
    seeds = {
        "good_plain": b"\x08\x00" + good,
        "good_stream": b"\x00\x11" + good,
        "good_gzip": b"\x19\x07" + good,
        "good_bzip2": b"\x2a\x03" + good,
        "good_big_members": b"\xf8\x29" + tar([("m.bin", b"m" * 5000), ("m.cls", b"1")]),
        "concat_ignore_zeros": b"\x0c\x05" + good + good,
        "concat_strict": b"\x08\x05" + good + good,
        "item1_pax_length_overflow": b"\x08\x00" + pax_overflow,
        "item2_base256_size": b"\x08\x00" + huge,
        "item3_gzip_flipped_byte": b"\x0b\x00" + bytes(flipped),
        "item3_gzip_bad_crc": b"\x0b\x00" + bytes(bad_crc),
        "item3_gzip_bad_length": b"\x0b\x00" + bytes(bad_len),
        "item3_gzip_garbage": b"\x0b\x00" + gzip.compress(good, mtime=0) + b"junk",
        "item3_bzip2_garbage": b"\x0b\x00" + bz2.compress(good) + b"junk",
        "gzip_two_members": b"\x0b\x00" + gzip.compress(good[:3000], mtime=0) + gzip.compress(good[3000:], mtime=0),
        "gzip_zero_padding": b"\x0b\x00" + gzip.compress(good, mtime=0) + bytes(100),
        "bzip2_two_streams": b"\x0b\x00" + bz2.compress(good[:3000]) + bz2.compress(good[3000:]),
        "item5_zero_block_middle": b"\x08\x00" + bytes(zero_mid),
        "long_pax": b"\x08\x02" + long_pax,
        "long_gnu": b"\x08\x02" + long_gnu,
        "sparse": b"\x08\x00" + bytes(sparse),
        "duplicate": b"\x08\x00" + dup,
        "truncated": b"\x08\x00" + good[:1500],
        "empty": b"\x08\x00",
        "one_byte": b"\x08\x00\x00",
    }
    write("tar_reader", seeds)
    plain = {k: v[2:] for k, v in seeds.items() if v[0] & 3 in (0, 3) and not k.startswith("item3")}
    write("index_build", plain)
    write(
        "group",
        {
            "simple": b"\x01\na.jpg\na.cls\nb.jpg\nb.JPG\nnoext\ndir.x/y\n__meta__\nc.seg.png\nc.SEG.PNG",
            "unicode": "\x00\nk.ÄB\nk.äb\nk.\nk\n.x\n/\na/b.c/d".encode(),
        },
    )
    side = {}
    try:
        from ppwebdataset._core import ShardIndex

        with tempfile.TemporaryDirectory() as d:
            for name in ("good_plain", "long_pax", "duplicate"):
                shard = Path(d) / f"{name}.tar"
                shard.write_bytes(plain[name])
                sc = Path(d) / f"{name}.idx"
                ShardIndex(str(shard), sidecar=str(sc))
                side[name] = sc.read_bytes()
    except ImportError:
        pass
    side["short"] = b"PPWDSIX1" + b"\0" * 20
    side["structured"] = bytes(range(256)) * 2
    write("sidecar_decode", side)


def write(target, seeds):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (d / name).write_bytes(data)


if __name__ == "__main__":
    main()
