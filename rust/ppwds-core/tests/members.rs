//! Member mode of the sample stream (`TarSampleReader(group=False)`): every member on
//! its own, through the grouped stream's batch limits and large-payload rule.

use std::io::{Cursor, Write};

use ppwds_core::samples::{keep_all, Decision, FillLimits, Payload, SampleStream, Stop};
use ppwds_core::source::tar_stream;
use ppwds_core::tar::header::BLOCK;
use ppwds_core::tar::ReadOptions;
use ppwds_core::ErrorKind;

mod common;
use common::build;

type Stream = SampleStream<Cursor<Vec<u8>>, Vec<u8>>;
/// `(name, data)` per member.
type Members = Vec<(Vec<u8>, Vec<u8>)>;

fn members(tar: Vec<u8>, keep_before_damage: bool) -> Stream {
    SampleStream::members(Cursor::new(tar), ReadOptions::default(), keep_before_damage)
}

/// Runs the stream to its end: `(name, data)` per member, the batch sizes, and the error.
fn drain(s: &mut Stream, limits: FillLimits) -> (Members, Vec<usize>, Option<ErrorKind>) {
    let mut out = Vec::new();
    let mut batches = Vec::new();
    loop {
        let mut batch = Vec::new();
        let mut stop = s.fill(&mut batch, limits, &mut keep_all);
        if let Stop::Big(entry) = &stop {
            let data = s.reader().read_data_vec().unwrap();
            assert_eq!(data.len() as u64, entry.size);
            batch.extend(s.deliver(Payload::External(data)));
            stop = Stop::Full;
        }
        batches.push(batch.len());
        for smp in batch {
            assert_eq!(smp.members.len(), 1);
            let (ext, payload) = smp.members.into_iter().next().unwrap();
            assert_eq!(s.ext(ext), b"");
            let data = match payload {
                Payload::Bytes(b) | Payload::External(b) => b,
            };
            out.push((smp.key, data));
        }
        match stop {
            Stop::Full => {}
            Stop::End => return (out, batches, None),
            Stop::Fatal(e) | Stop::Soft(e) => return (out, batches, Some(e.kind)),
            Stop::Big(_) => unreachable!(),
        }
    }
}

fn names(got: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    got.iter()
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .collect()
}

#[test]
fn every_member_is_its_own_sample() {
    let tar = build(&[
        (b"__meta__", b"m"),
        (b"a.jpg", b"1"),
        (b"a.JPG", b"2"),
        (b"noext", b"3"),
        (b"__dir__/x.txt", b"4"),
        (b"a.jpg", b""),
    ]);
    let (got, _, err) = drain(&mut members(tar, true), FillLimits::default());
    assert!(err.is_none());
    assert_eq!(
        names(&got),
        [
            "__meta__",
            "a.jpg",
            "a.JPG",
            "noext",
            "__dir__/x.txt",
            "a.jpg"
        ]
    );
    let data: Vec<_> = got.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(data, [&b"m"[..], b"1", b"2", b"3", b"4", b""]);
}

#[test]
fn batches_follow_the_shared_limits() {
    let files: Vec<(Vec<u8>, Vec<u8>)> = (0..10)
        .map(|i| (format!("m{i}.bin").into_bytes(), vec![i as u8; 100]))
        .collect();
    let refs: Vec<(&[u8], &[u8])> = files.iter().map(|(n, d)| (&n[..], &d[..])).collect();
    let by_count = FillLimits {
        max_samples: 3,
        ..FillLimits::default()
    };
    let (got, batches, err) = drain(&mut members(build(&refs), true), by_count);
    assert!(err.is_none());
    assert_eq!(got.len(), 10);
    assert!(batches.iter().all(|&n| n <= 3), "{batches:?}");
    let by_bytes = FillLimits {
        max_bytes: 250,
        ..FillLimits::default()
    };
    let (got, batches, _) = drain(&mut members(build(&refs), true), by_bytes);
    assert_eq!(got, files);
    // Three payloads of 100 bytes reach the limit; the member read last is held until
    // the next header proves it complete.
    assert!(batches.iter().all(|&n| n <= 3), "{batches:?}");
    assert!(batches.len() >= 4, "{batches:?}");
}

#[test]
fn big_members_are_left_to_the_caller() {
    let big = vec![9u8; 5000];
    let tar = build(&[(b"small", b"s"), (b"big", &big), (b"after", b"a")]);
    let mut s = members(tar, true);
    let limits = FillLimits {
        big_member: 4096,
        ..FillLimits::default()
    };
    let mut batch = Vec::new();
    let Stop::Big(entry) = s.fill(&mut batch, limits, &mut keep_all) else {
        panic!("expected the big member to be handed over");
    };
    assert_eq!((entry.name.as_slice(), entry.size), (&b"big"[..], 5000));
    // The header of the big member completed the member before it.
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].key, b"small");
    let (got, _, err) = {
        let data = s.reader().read_data_vec().unwrap();
        assert!(s.deliver(Payload::External(data)).is_none());
        drain(&mut s, limits)
    };
    assert!(err.is_none());
    assert_eq!(names(&got), ["big", "after"]);
    assert_eq!(got[0].1, big);
}

/// `a.txt`, `b.txt`, then a header with a broken checksum.
fn damaged_after_two() -> Vec<u8> {
    let mut tar = build(&[(b"a.txt", b"1"), (b"b.txt", b"2"), (b"c.txt", b"3")]);
    tar[4 * BLOCK + 148] ^= 1;
    tar
}

#[test]
fn a_damaged_header_keeps_the_member_before_it_only_when_asked() {
    let (got, _, err) = drain(
        &mut members(damaged_after_two(), true),
        FillLimits::default(),
    );
    assert_eq!(names(&got), ["a.txt", "b.txt"]);
    assert!(matches!(err, Some(ErrorKind::BadHeader(_))), "{err:?}");
    let (got, _, err) = drain(
        &mut members(damaged_after_two(), false),
        FillLimits::default(),
    );
    assert_eq!(names(&got), ["a.txt"]);
    assert!(matches!(err, Some(ErrorKind::BadHeader(_))), "{err:?}");
}

#[test]
fn a_bad_gzip_trailer_drops_the_last_member() {
    let tar = build(&[(b"a.txt", b"1"), (b"b.txt", b"2")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let mut gz = gz.finish().unwrap();
    let crc = gz.len() - 8;
    gz[crc] ^= 0xff;
    let (src, _) = tar_stream(Box::new(Cursor::new(gz))).unwrap();
    let mut s: SampleStream<_, Vec<u8>> = SampleStream::members(src, ReadOptions::default(), false);
    let mut got = Vec::new();
    let err = loop {
        let mut batch = Vec::new();
        match s.fill(&mut batch, FillLimits::default(), &mut keep_all) {
            Stop::Full => got.extend(batch.into_iter().map(|m| m.key)),
            Stop::Fatal(e) => {
                got.extend(batch.into_iter().map(|m| m.key));
                break e;
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(!got.contains(&b"b.txt".to_vec()), "{got:?}");
    assert!(matches!(err.kind, ErrorKind::Decompress(_)), "{err}");
    assert!(s.is_finished());
}

#[test]
fn the_name_filter_applies_in_member_mode_too() {
    let tar = build(&[(b"__meta__", b"m"), (b"a.jpg", b"1"), (b"b.jpg", b"2")]);
    let mut s = members(tar, true);
    let mut filter = |name: &[u8]| {
        Ok(match name {
            b"a.jpg" => Decision::Skip,
            b"b.jpg" => Decision::Rename(b"B.JPG".to_vec()),
            _ => Decision::Keep,
        })
    };
    let mut batch = Vec::new();
    let stop = s.fill(&mut batch, FillLimits::default(), &mut filter);
    assert!(matches!(stop, Stop::End), "{stop:?}");
    let keys: Vec<_> = batch.into_iter().map(|m| m.key).collect();
    assert_eq!(keys, [&b"__meta__"[..], b"B.JPG"]);
}
