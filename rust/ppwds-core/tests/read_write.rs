//! Round trips through the writer and reader, damaged input, and property tests.

use std::io::Cursor;

use ppwds_core::samples::read_all;
use ppwds_core::source::tar_stream;
use ppwds_core::tar::header::BLOCK;
use ppwds_core::tar::{MemberMeta, TarReader};
use ppwds_core::ErrorKind;
use proptest::prelude::*;

mod common;
use common::{build, fix_checksum};

/// `(key, [(extension, data)])` per sample.
type Samples = Vec<(String, Vec<(String, Vec<u8>)>)>;

fn samples(tar: &[u8]) -> ppwds_core::Result<Samples> {
    let (stream, _) = tar_stream(Box::new(Cursor::new(tar.to_vec())))?;
    Ok(read_all(stream)?
        .into_iter()
        .map(|s| {
            (
                String::from_utf8(s.key).unwrap(),
                s.members
                    .into_iter()
                    .map(|(e, d)| (String::from_utf8(e).unwrap(), d))
                    .collect(),
            )
        })
        .collect())
}

#[test]
fn groups_members_into_samples() {
    let tar = build(&[
        (b"a.jpg", b"JPEG"),
        (b"a.cls", b"1"),
        (b"__meta__", b"x"),
        (b"b.jpg", b""),
        (b"b.cls", b"2"),
        (b"dir/c.seg.png", b"png"),
    ]);
    let got = samples(&tar).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, "a");
    assert_eq!(
        got[0].1,
        vec![
            ("jpg".into(), b"JPEG".to_vec()),
            ("cls".into(), b"1".to_vec())
        ]
    );
    assert_eq!(got[1].1[0], ("jpg".into(), Vec::new()));
    assert_eq!(got[2].0, "dir/c");
    assert_eq!(got[2].1[0].0, "seg.png");
}

#[test]
fn long_names_round_trip() {
    let long_dir = "d".repeat(120);
    let prefixed = format!("{long_dir}/sample.txt");
    let very_long = format!("{}/{}.txt", "x".repeat(200), "y".repeat(150));
    let tar = build(&[(prefixed.as_bytes(), b"1"), (very_long.as_bytes(), b"2")]);
    let got = samples(&tar).unwrap();
    assert_eq!(got[0].0, format!("{long_dir}/sample"));
    assert_eq!(got[1].0, format!("{}/{}", "x".repeat(200), "y".repeat(150)));
}

fn gnu_long_name_tar(name: &[u8], data: &[u8]) -> Vec<u8> {
    // Hand-made GNU tar: an 'L' entry carrying the name, then the file.
    let meta = MemberMeta::default();
    let mut out = Vec::new();
    let mut l =
        ppwds_core::tar::writer::encode_header(b"././@LongLink", name.len() as u64 + 1, &meta);
    let last = l.len() - BLOCK;
    l[last + 156] = b'L';
    fix_checksum(&mut l[last..]);
    out.extend_from_slice(&l);
    let mut body = name.to_vec();
    body.push(0);
    body.resize(body.len().div_ceil(BLOCK) * BLOCK, 0);
    out.extend_from_slice(&body);
    let mut h = ppwds_core::tar::writer::encode_header(b"truncated-name", data.len() as u64, &meta);
    let last = h.len() - BLOCK;
    fix_checksum(&mut h[last..]);
    out.extend_from_slice(&h);
    let mut d = data.to_vec();
    d.resize(d.len().div_ceil(BLOCK) * BLOCK, 0);
    out.extend_from_slice(&d);
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    out
}

#[test]
fn gnu_long_names() {
    let name = format!("{}/k.bin", "z".repeat(300));
    let tar = gnu_long_name_tar(name.as_bytes(), b"data");
    let got = samples(&tar).unwrap();
    assert_eq!(got[0].0, format!("{}/k", "z".repeat(300)));
    assert_eq!(got[0].1[0].1, b"data");
}

#[test]
fn truncated_data_is_an_error_naming_member_and_offset() {
    let tar = build(&[(b"a.txt", b"hello"), (b"b.txt", &[7u8; 3000])]);
    let cut = &tar[..BLOCK * 3 + 100];
    let err = samples(cut).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Truncated(_)), "{err}");
    assert_eq!(err.member.as_deref(), Some("b.txt"));
    assert_eq!(err.offset, Some(2 * BLOCK as u64));
    let text = err.to_string();
    assert!(text.contains("b.txt") && text.contains("1024"), "{text}");
}

#[test]
fn missing_end_marker_is_truncation() {
    let tar = build(&[(b"a.txt", b"hello"), (b"a.cls", b"1")]);
    let cut = &tar[..BLOCK * 4];
    let err = samples(cut).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Truncated(_)), "{err}");
}

#[test]
fn empty_input_is_an_error_and_zero_block_is_empty_archive() {
    assert!(samples(&[]).is_err());
    assert_eq!(samples(&[0u8; 1024]).unwrap().len(), 0);
}

#[test]
fn bad_checksum_is_reported_with_offset() {
    let mut tar = build(&[(b"a.txt", b"hello"), (b"b.txt", b"x")]);
    tar[2 * BLOCK + 3] ^= 0x55;
    let err = samples(&tar).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::BadHeader(_)), "{err}");
    assert_eq!(err.offset, Some(2 * BLOCK as u64));
}

#[test]
fn duplicate_extension_is_reported() {
    let tar = build(&[(b"a.txt", b"1"), (b"a.TXT", b"2")]);
    let err = samples(&tar).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::DuplicateMember { .. }),
        "{err}"
    );
}

#[test]
fn sparse_is_rejected() {
    let mut tar = build(&[(b"a.txt", b"1")]);
    tar[156] = b'S';
    fix_checksum(&mut tar[..BLOCK]);
    let err = samples(&tar).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unsupported(_)), "{err}");
}

#[test]
fn gzip_is_detected() {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let tar = build(&[(b"a.txt", b"hello")]);
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&tar).unwrap();
    let gz = enc.finish().unwrap();
    let got = samples(&gz).unwrap();
    assert_eq!(got[0].1[0].1, b"hello");
    let err = samples(&gz[..gz.len() / 2]).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Truncated(_) | ErrorKind::Decompress(_)),
        "{err}"
    );
}

#[test]
fn reader_reports_entries_and_offsets() {
    let tar = build(&[(b"a.txt", b"hello"), (b"b.txt", b"x")]);
    let mut r = TarReader::new(Cursor::new(tar));
    let e = r.next_entry().unwrap().unwrap();
    assert_eq!((e.header_offset, e.data_offset, e.size), (0, 512, 5));
    let e = r.next_entry().unwrap().unwrap();
    assert_eq!((e.header_offset, e.data_offset), (1024, 1536));
    assert_eq!(r.read_data_vec().unwrap(), b"x");
    assert!(r.next_entry().unwrap().is_none());
}

fn arb_members() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = "[a-z]{1,4}(/[a-z]{1,3})?\\.[a-zA-Z]{1,3}";
    prop::collection::vec((name, prop::collection::vec(any::<u8>(), 0..700)), 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip_matches_members(members in arb_members()) {
        let refs: Vec<(&[u8], &[u8])> = members.iter().map(|(n, d)| (n.as_bytes(), d.as_slice())).collect();
        let tar = build(&refs);
        let (stream, _) = tar_stream(Box::new(Cursor::new(tar))).unwrap();
        let mut r = TarReader::new(stream);
        let mut got = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            got.push((String::from_utf8(e.name).unwrap(), r.read_data_vec().unwrap()));
        }
        prop_assert_eq!(got, members);
    }

    #[test]
    fn mutated_tars_never_panic(members in arb_members(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let refs: Vec<(&[u8], &[u8])> = members.iter().map(|(n, d)| (n.as_bytes(), d.as_slice())).collect();
        let mut tar = build(&refs);
        for (pos, val) in flips {
            let p = pos % tar.len();
            tar[p] = val;
        }
        let cut = cut % (tar.len() + 1);
        tar.truncate(cut);
        let _ = samples(&tar);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = samples(&data);
    }
}
