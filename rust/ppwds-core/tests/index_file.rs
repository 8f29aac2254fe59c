//! The index over a file: reads by position, a shard changed under it, repeated extensions.

use std::fs;
use std::path::PathBuf;

use ppwds_core::index::{IndexData, OpenOptions, ShardIndex, SPAN_LIMIT};
use ppwds_core::ErrorKind;
use proptest::prelude::*;

#[allow(dead_code)] // not every helper is used here
mod common;
use common::build;

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ppwds-index-file-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_truncated_shard_is_an_error_naming_member_and_offset() {
    let big = vec![7u8; 5000];
    let tar = build(&[(b"a.bin", &big), (b"b.bin", &big), (b"c.bin", &big)]);
    let path = scratch("cut.tar", &tar);
    let idx = ShardIndex::open(&path, &OpenOptions::default()).unwrap();
    let c = idx.data().members(2).next().unwrap();
    assert_eq!(idx.read_member(&c).unwrap(), big);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(c.data_offset + 10)
        .unwrap();
    let a = idx.data().members(0).next().unwrap();
    assert_eq!(idx.read_member(&a).unwrap(), big);
    let err = idx.read_member(&c).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Truncated(_)), "{err}");
    assert_eq!(
        (err.member.as_deref(), err.offset),
        (Some("c.bin"), Some(c.data_offset))
    );
    let mut buf = Vec::new();
    let err = idx.read_sample_span(2, &mut buf).unwrap_err();
    assert_eq!(err.member.as_deref(), Some("c.bin"));
}

#[test]
fn repeated_extensions_are_found_with_header_offsets() {
    let tar = build(&[
        (b"x.txt", b"1"),
        (b"x.cls", b"2"),
        (b"x.txt", b"3"),
        (b"y.txt", b"4"),
    ]);
    let path = scratch("dup.tar", &tar);
    let idx = ShardIndex::open(&path, &OpenOptions::default()).unwrap();
    assert_eq!(idx.duplicates().len(), 1);
    assert!(idx.duplicate(1).is_none());
    let err = idx.duplicate_error(0).unwrap();
    assert!(matches!(err.kind, ErrorKind::DuplicateMember { .. }));
    assert_eq!(
        (err.member.as_deref(), err.offset),
        (Some("x.txt"), Some(2048))
    );
    // From the index data alone (a sidecar) the same samples are found.
    let data = IndexData::build(&tar).unwrap();
    let dups = data.duplicates();
    assert_eq!((dups.len(), dups[0].sample, dups[0].member), (1, 0, 2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Walking the file by positioned reads and the bytes in memory give the same index,
    /// and sample spans hold exactly the member data.
    #[test]
    fn file_walk_agrees_with_memory_walk(sizes in prop::collection::vec(0usize..20_000, 1..12)) {
        let names: Vec<String> = sizes.iter().enumerate().map(|(i, _)| format!("k{}.e{}", i / 2, i % 2)).collect();
        let datas: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
        let members: Vec<(&[u8], &[u8])> = names.iter().zip(&datas).map(|(n, d)| (n.as_bytes(), d.as_slice())).collect();
        let tar = build(&members);
        let path = scratch(&format!("walk-{}.tar", sizes.len()), &tar);
        let idx = ShardIndex::open(&path, &OpenOptions::default()).unwrap();
        prop_assert_eq!(idx.data(), &IndexData::build(&tar).unwrap());
        let mut buf = Vec::new();
        for i in 0..idx.len() {
            let span = idx.read_sample_span(i, &mut buf).unwrap();
            let ms = idx.data().sample_members(i);
            let (lo, last) = (ms[0].data_offset, ms[ms.len() - 1]);
            prop_assert_eq!(span.is_some(), last.data_offset + last.size - lo <= SPAN_LIMIT);
            for m in idx.data().members(i) {
                let want = &tar[m.data_offset as usize..(m.data_offset + m.size) as usize];
                prop_assert_eq!(idx.read_member(&m).unwrap(), want);
                if let Some(lo) = span {
                    let start = (m.data_offset - lo) as usize;
                    prop_assert_eq!(&buf[start..start + m.size as usize], want);
                }
            }
        }
    }
}
