//! Regression tests for issue 9: overflowing sizes, compressed-stream integrity and
//! zero blocks in the middle of a shard.

use std::io::{Cursor, Write};

use ppwds_core::index::IndexData;
use ppwds_core::samples::{keep_all, FillLimits, OwnedSample, Payload, SampleStream, Stop};
use ppwds_core::source::tar_stream;
use ppwds_core::tar::header::BLOCK;
use ppwds_core::tar::{ReadOptions, TarReader};
use ppwds_core::{Error, ErrorKind};

mod common;
use common::{build, fix_checksum};

/// A raw header block with an octal size (edited further by the tests).
fn header(name: &[u8], size: u64, typeflag: u8) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    b[100..107].copy_from_slice(b"0000644");
    b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    b[156] = typeflag;
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    fix_checksum(&mut b);
    b
}

fn with_data(mut out: Vec<u8>, data: &[u8]) -> Vec<u8> {
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

/// Every sample before the first error, and that error.
fn read_opts(bytes: &[u8], opts: ReadOptions) -> (Vec<OwnedSample>, Option<Error>) {
    let (stream, _) = match tar_stream(Box::new(Cursor::new(bytes.to_vec()))) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut s: SampleStream<_, Vec<u8>> = SampleStream::with_options(stream, opts);
    let mut out = Vec::new();
    loop {
        let mut batch = Vec::new();
        let limits = FillLimits {
            max_samples: 1,
            ..FillLimits::default()
        };
        let stop = s.fill(&mut batch, limits, &mut keep_all);
        for smp in batch {
            let members = smp
                .members
                .into_iter()
                .map(|(e, p)| match p {
                    Payload::Bytes(b) | Payload::External(b) => (s.ext(e).to_vec(), b),
                })
                .collect();
            out.push(OwnedSample {
                key: smp.key,
                members,
            });
        }
        match stop {
            Stop::Full => {}
            Stop::End => return (out, None),
            Stop::Fatal(e) | Stop::Soft(e) => return (out, Some(e)),
            Stop::Big(_) => unreachable!("default limits keep small members"),
        }
    }
}

fn read(bytes: &[u8]) -> (Vec<OwnedSample>, Option<Error>) {
    read_opts(bytes, ReadOptions::default())
}

fn five_samples() -> Vec<u8> {
    let names: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
        .flat_map(|i| {
            [
                (
                    format!("s{i}.cls").into_bytes(),
                    format!("{i}").into_bytes(),
                ),
                (format!("s{i}.txt").into_bytes(), vec![b'a' + i as u8; 700]),
            ]
        })
        .collect();
    let refs: Vec<(&[u8], &[u8])> = names
        .iter()
        .map(|(n, d)| (n.as_slice(), d.as_slice()))
        .collect();
    build(&refs)
}

fn keys(samples: &[OwnedSample]) -> Vec<String> {
    samples
        .iter()
        .map(|s| String::from_utf8_lossy(&s.key).into_owned())
        .collect()
}

#[test]
fn pax_length_near_2_pow_64_is_a_header_error() {
    let pax = b"13 path=a\nbc\n18446744073709551613 x=y\n";
    let mut tar = with_data(header(b"pax", pax.len() as u64, b'x'), pax);
    tar.extend(with_data(header(b"a.txt", 1, b'0'), b"x"));
    tar.extend(vec![0u8; 2 * BLOCK]);
    let (got, err) = read(&tar);
    assert!(got.is_empty());
    let err = err.expect("an error");
    assert!(matches!(err.kind, ErrorKind::BadHeader(_)), "{err}");
    assert_eq!(err.offset, Some(0));
}

#[test]
fn base256_size_near_2_pow_64_names_member_and_offset() {
    let good = build(&[(b"a.cls", b"1"), (b"b.cls", b"2")]);
    let mut tar = good[..4 * BLOCK].to_vec();
    let mut h = header(b"c.bin", 0, b'0');
    // Base-256: 2^64 - 512, which fits in 64 bits but overflows any offset added to it.
    h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0]);
    fix_checksum(&mut h);
    tar.extend(&h);
    tar.extend(vec![0u8; 4 * BLOCK]);
    let (got, err) = read(&tar);
    assert_eq!(keys(&got), ["a"]);
    let err = err.expect("an error");
    assert!(matches!(err.kind, ErrorKind::BadHeader(_)), "{err}");
    assert_eq!(err.member.as_deref(), Some("c.bin"));
    assert_eq!(err.offset, Some(4 * BLOCK as u64));
    // Index building refuses it the same way.
    assert!(IndexData::build(&tar).is_err());
}

fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn is_decompress(err: &Option<Error>) -> bool {
    matches!(
        err,
        Some(Error {
            kind: ErrorKind::Decompress(_),
            ..
        })
    )
}

#[test]
fn gzip_flipped_data_byte_fails_before_the_last_sample() {
    let tar = five_samples();
    let mut gz = gzip_stored(&tar);
    // A stored block: this flips one byte of the first sample's .txt payload.
    let pos = gz.windows(4).position(|w| w == b"aaaa").unwrap();
    gz[pos] ^= 1;
    let (got, err) = read(&gz);
    assert!(is_decompress(&err), "{err:?}");
    assert!(got.len() < 5, "the last sample must be held back");
}

#[test]
fn gzip_trailer_crc_and_length_are_checked() {
    let gz = gzip(&five_samples());
    for back in [8usize, 1] {
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - back] ^= 0x40;
        let (got, err) = read(&bad);
        assert!(is_decompress(&err), "{back}: {err:?}");
        assert_eq!(got.len(), 4, "all but the last sample");
    }
    let (got, err) = read(&gz);
    assert!(err.is_none());
    assert_eq!(got.len(), 5);
}

#[test]
fn gzip_cut_before_trailer_is_truncation() {
    let gz = gzip(&five_samples());
    let (got, err) = read(&gz[..gz.len() - 4]);
    assert!(
        matches!(
            err,
            Some(Error {
                kind: ErrorKind::Truncated(_),
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(got.len(), 4);
}

#[test]
fn gzip_members_padding_and_garbage_follow_gzip_rules() {
    let tar = five_samples();
    // One tar split over two gzip members reads as one stream.
    let mut two = gzip(&tar[..3 * BLOCK]);
    two.extend(gzip(&tar[3 * BLOCK..]));
    let (got, err) = read(&two);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), 5);
    // Zero padding after the last member is skipped, like gzip -d and Python's gzip.
    let mut padded = gzip(&tar);
    padded.extend([0u8; 1000]);
    let (got, err) = read(&padded);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), 5);
    // Other trailing bytes are an error, like Python's gzip (tar -xzf fails too).
    let mut garbage = gzip(&tar);
    garbage.extend(b"GARBAGE!");
    let (got, err) = read(&garbage);
    assert!(is_decompress(&err), "{err:?}");
    assert_eq!(got.len(), 4);
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn bzip2_streams_and_trailing_bytes_follow_bzip2_rules() {
    let tar = five_samples();
    let mut two = bzip2(&tar[..3 * BLOCK]);
    two.extend(bzip2(&tar[3 * BLOCK..]));
    two.extend(b"trailing garbage");
    let (got, err) = read(&two);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), 5);
    let mut bad = bzip2(&tar);
    let n = bad.len();
    bad[n - 3] ^= 0x10; // the stream CRC
    let (got, err) = read(&bad);
    assert!(err.is_some());
    assert!(got.len() < 5);
}

/// Offset of the first header of sample `i` in [`five_samples`].
fn sample_offset(i: usize) -> usize {
    i * 5 * BLOCK
}

#[test]
fn zero_block_in_the_middle_is_damage() {
    let mut tar = five_samples();
    let at = sample_offset(2);
    tar[at..at + BLOCK].fill(0);
    let (got, err) = read(&tar);
    // s1 may lack members hidden by the zero block, so it is dropped too.
    assert_eq!(keys(&got), ["s0"]);
    let err = err.expect("damage must be reported");
    assert!(matches!(err.kind, ErrorKind::BadHeader(_)), "{err}");
    assert!(err.to_string().contains("end-of-archive"), "{err}");
    // The zeroed header's data block is skipped; s2.txt's header gives the damage away.
    assert_eq!(err.member.as_deref(), Some("s2.txt"));
    assert_eq!(err.offset, Some((sample_offset(2) + 2 * BLOCK) as u64));
    // The random-access index uses the same reader, so it cannot record 2 samples.
    assert!(IndexData::build(&tar).is_err());
    // A reader told that the input may go on forever stops at the marker as before.
    let opts = ReadOptions {
        check_after_end: false,
        ..ReadOptions::default()
    };
    let (got, err) = read_opts(&tar, opts);
    assert_eq!(got.len(), 2);
    assert!(err.is_none());
}

#[test]
fn trailing_zero_padding_and_junk_are_fine() {
    let mut tar = five_samples();
    tar.extend(vec![0u8; 10 * BLOCK + 100]);
    let (got, err) = read(&tar);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), 5);
    tar.extend(vec![0x55u8; 3 * BLOCK]);
    let (got, err) = read(&tar);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), 5);
}

#[test]
fn ignore_zeros_reads_concatenated_archives() {
    let mut cat = five_samples();
    cat.extend(build(&[(b"t0.cls", b"x"), (b"t1.cls", b"y")]));
    let (got, err) = read(&cat);
    assert_eq!(got.len(), 4);
    assert!(
        err.is_some(),
        "a second archive after the marker is reported"
    );
    let opts = ReadOptions {
        ignore_zeros: true,
        ..ReadOptions::default()
    };
    let (got, err) = read_opts(&cat, opts);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(keys(&got), ["s0", "s1", "s2", "s3", "s4", "t0", "t1"]);
    // Still strict about real damage and cut input.
    let (got, err) = read_opts(&cat[..cat.len() - 10240 + 700], opts);
    assert!(
        matches!(
            err,
            Some(Error {
                kind: ErrorKind::Truncated(_),
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(got.len(), 5);
}

#[test]
fn extended_header_followed_by_end_marker_is_damage() {
    let pax = b"15 path=a.txt\n";
    let mut tar = build(&[(b"s.cls", b"1")]);
    let end = 2 * BLOCK;
    tar.truncate(end);
    tar.extend(with_data(header(b"pax", pax.len() as u64, b'x'), pax));
    tar.extend(vec![0u8; 2 * BLOCK]);
    let mut r = TarReader::new(Cursor::new(tar));
    assert!(r.next_entry().unwrap().is_some());
    let err = r.next_entry().unwrap_err();
    assert!(matches!(err.kind, ErrorKind::BadHeader(_)), "{err}");
}
