//! ShardEncoder: the archive layout of the shard writers, checked without Python.
//!
//! The golden archives in `tests/codec/golden/` were written by the Python
//! `TarWriter` before its layout moved here; the encoder must reproduce them.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::PathBuf;

use ppwds_core::encoder::{EncoderOptions, ShardEncoder};
use ppwds_core::samples::read_all;
use ppwds_core::tar::header::BLOCK;
use ppwds_core::tar::TarReader;
use ppwds_core::ErrorKind;
use proptest::prelude::*;

const MTIME: u64 = 1_700_000_000;

fn golden(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/codec/golden");
    std::fs::read(p.join(name)).unwrap()
}

fn options(keep_meta: bool, gzip_fields: bool) -> EncoderOptions {
    EncoderOptions {
        mtime: Some(MTIME),
        keep_meta,
        gzip_fields,
        ..EncoderOptions::default()
    }
}

/// `(name, data)` of every member, in archive order.
fn members(tar: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut r = TarReader::new(Cursor::new(tar));
    let mut out = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        out.push((e.name, r.read_data_vec().unwrap()));
    }
    assert!(r.is_done());
    out
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// `(key, [(field, data)])` with owned bytes.
type OwnedSample = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

type Sample<'a> = (&'a [u8], Vec<(&'a [u8], &'a [u8])>);

fn encode(opts: EncoderOptions, samples: &[Sample<'_>]) -> (Vec<u8>, Vec<u64>) {
    let mut enc = ShardEncoder::new(Vec::new(), opts).unwrap();
    let sizes = samples
        .iter()
        .map(|(k, f)| enc.write_sample(k, f).unwrap())
        .collect();
    (enc.into_inner().unwrap(), sizes)
}

/// `raw_samples()` of tests/codec/writer_golden.py, values as the binding hands them over.
fn raw_samples() -> Vec<Sample<'static>> {
    let long: &'static [u8] = Box::leak(vec![b'r'; 200].into_boxed_slice());
    let zeros: &'static [u8] = Box::leak(vec![0u8; 700].into_boxed_slice());
    vec![
        (
            b"r1",
            vec![
                (b"txt", b"one"),
                (b"__url__", b"u"),
                (b"_m", b"meta"),
                (b"b.gz", b"not compressed"),
            ],
        ),
        (
            b"r2",
            vec![(b"x", b"two"), (b"y", b"three"), (b"", b"empty ext")],
        ),
        (long, vec![(b"bin", zeros)]),
    ]
}

#[test]
fn reproduces_the_golden_raw_archives() {
    let (tar, sizes) = encode(options(false, false), &raw_samples());
    assert_eq!(tar, golden("raw.tar"));
    assert_eq!(sizes, [17, 17, 700]);
    let (tar, sizes) = encode(options(true, false), &raw_samples());
    assert_eq!(tar, golden("raw_keep_meta.tar"));
    assert_eq!(sizes, [22, 17, 700]);
}

/// Keys of `encoded_samples()` in writer_golden.py, as UTF-8 (surrogates as the raw byte).
fn golden_keys() -> Vec<Vec<u8>> {
    let mut keys = vec![
        b"a".to_vec(),
        "dir/ünï-キー".as_bytes().to_vec(),
        b"bad\xffname".to_vec(),
        b"a.b".to_vec(),
    ];
    keys.push(format!("{}/k", "d".repeat(120)).into_bytes());
    keys.push("p".repeat(96).into_bytes());
    keys.push("q".repeat(97).into_bytes());
    keys.push("x".repeat(300).into_bytes());
    keys.push(format!("{}/{}", "é".repeat(60), "ü".repeat(40)).into_bytes());
    for k in ["gz", "empty", "ints", "views", "arr", "mapping", "block"] {
        keys.push(k.as_bytes().to_vec());
    }
    keys
}

/// The samples of a golden archive, recovered from its members: `(key, [(field, data)])`.
fn samples_of(tar: &[u8]) -> Vec<OwnedSample> {
    let mut out: Vec<OwnedSample> = Vec::new();
    let keys = golden_keys();
    for (name, data) in members(tar) {
        let key = keys
            .iter()
            .filter(|k| name.starts_with(k) && name.get(k.len()) == Some(&b'.'))
            .max_by_key(|k| k.len())
            .expect("member of a known sample");
        let field = name[key.len() + 1..].to_vec();
        match out.last_mut() {
            Some((k, fields)) if k == key => fields.push((field, data)),
            _ => out.push((key.clone(), vec![(field, data)])),
        }
    }
    out
}

/// Re-encodes a golden archive from its samples (fields reversed, `.gz` ones unpacked) and
/// checks the bytes, with the Python-side compressor standing in through `set_gzip`.
fn reencode(name: &str, opts: EncoderOptions) {
    let want = golden(name);
    let samples = samples_of(&want);
    let mut packed: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let inputs: Vec<OwnedSample> = samples
        .iter()
        .map(|(k, fields)| {
            let mut fields: Vec<(Vec<u8>, Vec<u8>)> = fields
                .iter()
                .map(|(f, d)| {
                    if f.ends_with(b".gz") {
                        let plain = gunzip(d);
                        packed.insert(plain.clone(), d.clone());
                        (f.clone(), plain)
                    } else {
                        (f.clone(), d.clone())
                    }
                })
                .collect();
            fields.reverse();
            (k.clone(), fields)
        })
        .collect();
    let mut enc = ShardEncoder::new(Vec::new(), opts).unwrap();
    enc.set_gzip(Box::new(move |d: &[u8]| Ok(packed[d].clone())));
    for (k, fields) in &inputs {
        let f: Vec<(&[u8], &[u8])> = fields.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        enc.write_sample(k, &f).unwrap();
    }
    assert_eq!(enc.into_inner().unwrap(), want, "{name}");
}

#[test]
fn reproduces_the_golden_encoded_archives() {
    reencode("default.tar", options(false, true));
    let opts = EncoderOptions {
        mode: 0o640,
        uname: "alice".into(),
        gname: "staff".into(),
        ..options(true, true)
    };
    reencode("keep_meta.tar", opts);
}

#[test]
fn fields_become_sorted_key_dot_field_members() {
    let (tar, sizes) = encode(
        options(false, true),
        &[(
            b"dir/k.x",
            vec![
                (b"txt", b"t"),
                (b"__url__", b"u"),
                (b"cls", b"1"),
                (b"_m", b"m"),
                (b"a.b", b""),
            ],
        )],
    );
    let names: Vec<_> = members(&tar).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, [&b"dir/k.x.a.b"[..], b"dir/k.x.cls", b"dir/k.x.txt"]);
    assert_eq!(sizes, [2]);
    // Metadata is kept on request, sorted with the rest ('_' sorts after upper case).
    let (tar, sizes) = encode(
        options(true, true),
        &[(b"k", vec![(b"txt", b"t"), (b"__url__", b"u"), (b"Z", b"z")])],
    );
    let names: Vec<_> = members(&tar).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, [&b"k.Z"[..], b"k.__url__", b"k.txt"]);
    assert_eq!(sizes, [3]);
}

#[test]
fn long_names_use_the_prefix_field_or_pax() {
    let with_slash = format!("{}/k", "d".repeat(120));
    let no_slash = "n".repeat(300);
    let (tar, _) = encode(
        options(false, true),
        &[
            (with_slash.as_bytes(), vec![(b"txt", b"1")]),
            (no_slash.as_bytes(), vec![(b"txt", b"2")]),
        ],
    );
    // ustar prefix: one header block; pax: an 'x' header, its records, then the header.
    assert_eq!(tar[156], b'0');
    assert_eq!(&tar[345..345 + 120], "d".repeat(120).as_bytes());
    assert_eq!(tar[2 * BLOCK + 156], b'x');
    let got = members(&tar);
    assert_eq!(got[0].0, format!("{with_slash}.txt").into_bytes());
    assert_eq!(got[1].0, format!("{no_slash}.txt").into_bytes());
    assert_eq!(got[1].1, b"2");
}

#[test]
fn gz_fields_are_compressed_unless_the_values_come_encoded() {
    let text = b"compress me ".repeat(50);
    let (tar, sizes) = encode(
        options(false, true),
        &[(b"k", vec![(b"txt.gz", &text[..]), (b"_m.gz", b"meta")])],
    );
    let got = members(&tar);
    assert_eq!(got.len(), 1);
    assert_eq!(gunzip(&got[0].1), text);
    assert!(got[0].1.len() < text.len());
    assert_eq!(sizes, [got[0].1.len() as u64]);
    // The header says "no mtime" and "Unix", like Python's gzip.compress(data, mtime=0).
    assert_eq!(&got[0].1[4..8], &[0, 0, 0, 0]);
    assert_eq!(got[0].1[9], 3);
    // Metadata fields are never compressed.
    let (tar, _) = encode(options(true, true), &[(b"k", vec![(b"_m.gz", b"meta")])]);
    assert_eq!(members(&tar)[0].1, b"meta");
    let (tar, _) = encode(
        options(false, false),
        &[(b"k", vec![(b"txt.gz", b"as is")])],
    );
    assert_eq!(members(&tar)[0].1, b"as is");
}

#[test]
fn byte_counts_and_the_end_marker() {
    let big = vec![7u8; (1 << 20) + 5];
    let mut enc = ShardEncoder::new(Vec::new(), options(false, true)).unwrap();
    assert_eq!(enc.write_sample(b"a", &[(b"bin", b"xyz")]).unwrap(), 3);
    assert_eq!(enc.bytes_written(), 2 * BLOCK as u64);
    assert_eq!(
        enc.write_sample(b"b", &[(b"bin", &big[..])]).unwrap(),
        big.len() as u64
    );
    assert_eq!(
        enc.bytes_written(),
        (2 * BLOCK + BLOCK + big.len().next_multiple_of(BLOCK)) as u64
    );
    // A sample of metadata only writes nothing.
    assert_eq!(enc.write_sample(b"c", &[(b"__url__", b"u")]).unwrap(), 0);
    let before = enc.bytes_written();
    enc.finish().unwrap();
    let total = enc.bytes_written();
    assert!(total - before >= 2 * BLOCK as u64);
    assert_eq!(total % (20 * BLOCK as u64), 0);
    assert!(enc.write_sample(b"d", &[(b"x", b"")]).is_err());
    let out = enc.into_inner().unwrap();
    assert_eq!(out.len() as u64, total);
    assert!(out[before as usize..].iter().all(|&b| b == 0));
    assert_eq!(members(&out)[1].1, big);
}

#[test]
fn bad_samples_write_nothing() {
    let mut enc = ShardEncoder::new(Vec::new(), options(false, true)).unwrap();
    enc.write_sample(b"ok", &[(b"txt", b"1")]).unwrap();
    let at = enc.bytes_written();
    let err = enc
        .write_sample(b"k", &[(b"a", b"1"), (b"b\0c", b"2")])
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::InvalidMember(_)), "{err}");
    assert!(err.reason().contains("NUL"), "{err}");
    assert_eq!(err.offset, Some(at));
    assert!(enc.write_sample(b"k", &[(b"__key__", b"k")]).is_err());
    let mut enc2 = ShardEncoder::new(Vec::new(), options(false, true)).unwrap();
    enc2.set_gzip(Box::new(|_: &[u8]| {
        Err(std::io::Error::other("no gzip today"))
    }));
    assert!(enc2
        .write_sample(b"k", &[(b"a", b"1"), (b"b.gz", b"2")])
        .is_err());
    assert_eq!(enc2.bytes_written(), 0);
    assert_eq!(enc.bytes_written(), at);
    assert_eq!(members(&enc.into_inner().unwrap()).len(), 1);
    let bad = EncoderOptions {
        uname: "u".repeat(33),
        ..EncoderOptions::default()
    };
    assert!(ShardEncoder::new(Vec::new(), bad).is_err());
}

/// A sink that takes at most a few bytes per call.
struct Trickle(Vec<u8>);

impl std::io::Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn short_writes_and_small_buffers_give_the_same_bytes() {
    let samples = raw_samples();
    let (want, _) = encode(options(false, false), &samples);
    let opts = EncoderOptions {
        buffer_size: 1,
        ..options(false, false)
    };
    let mut enc = ShardEncoder::new(Trickle(Vec::new()), opts).unwrap();
    for (k, f) in &samples {
        enc.write_sample(k, f).unwrap();
    }
    assert_eq!(enc.into_inner().unwrap().0, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the encoder writes, the core reader groups back into the same samples.
    #[test]
    fn output_reads_back_as_the_samples(
        samples in proptest::collection::vec(
            (
                "[a-z]{1,8}(/[a-zé]{1,30}){0,4}",
                proptest::collection::btree_map(
                    "[a-z]{1,6}(\\.[a-z0-9]{1,4}){0,2}",
                    proptest::collection::vec(any::<u8>(), 0..2000),
                    1..4,
                ),
            ),
            1..6,
        )
    ) {
        let mut enc = ShardEncoder::new(Vec::new(), options(false, false)).unwrap();
        let mut want = Vec::new();
        for (i, (key, fields)) in samples.iter().enumerate() {
            // Distinct adjacent keys, so grouping cannot merge two samples.
            let key = format!("{key}{i}");
            let f: Vec<(&[u8], &[u8])> =
                fields.iter().map(|(n, d)| (n.as_bytes(), &d[..])).collect();
            let n = enc.write_sample(key.as_bytes(), &f).unwrap();
            prop_assert_eq!(n, fields.values().map(|d| d.len() as u64).sum::<u64>());
            let members: Vec<(Vec<u8>, Vec<u8>)> = fields
                .iter()
                .map(|(n, d)| (n.as_bytes().to_vec(), d.clone()))
                .collect();
            want.push((key.into_bytes(), members));
        }
        let tar = enc.into_inner().unwrap();
        let got: Vec<_> = read_all(Cursor::new(tar))
            .unwrap()
            .into_iter()
            .map(|s| (s.key, s.members))
            .collect();
        prop_assert_eq!(got, want);
    }
}
