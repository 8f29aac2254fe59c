//! The random-access shard index: names, grouping, duplicates, damage and sidecars.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use ppwds_core::index::{FileStamp, IndexData, IndexSource, OpenOptions, ShardIndex};
use ppwds_core::keys::split_key;
use ppwds_core::keys::wids_split;
use ppwds_core::tar::header::BLOCK;
use ppwds_core::tar::writer::encode_header;
use ppwds_core::tar::MemberMeta;
use ppwds_core::ErrorKind;
use proptest::prelude::*;

mod common;
use common::{build, fix_checksum};

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ppwds-index-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

type Decoded = Vec<(String, Vec<(String, Vec<u8>)>)>;

fn decoded(index: &ShardIndex) -> Decoded {
    (0..index.len())
        .map(|i| {
            let key = String::from_utf8(index.data().key(i).to_vec()).unwrap();
            let members = index
                .data()
                .members(i)
                .map(|m| {
                    (
                        String::from_utf8(m.ext.to_vec()).unwrap(),
                        index.read_member(&m).unwrap(),
                    )
                })
                .collect();
            (key, members)
        })
        .collect()
}

fn open(path: &Path) -> ShardIndex {
    ShardIndex::open(path, &OpenOptions::default()).unwrap()
}

fn split(name: &str) -> Option<(&str, &str)> {
    wids_split(name.as_bytes()).map(|k| (&name[..k], &name[k..]))
}

#[test]
fn wids_split_table() {
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        ("a.jpg", Some(("a", ".jpg"))),
        ("a.seg.jpg", Some(("a", ".seg.jpg"))),
        ("dir.x/a.jpg", Some(("dir.x/a", ".jpg"))),
        ("x/y/z.tar.gz", Some(("x/y/z", ".tar.gz"))),
        (
            "235342 Track 2.0 (Clean).mp3",
            Some(("235342 Track 2", ".0 (Clean).mp3")),
        ),
        // Where wids and webdataset differ: wids backtracks into dotted directories.
        ("a.b/c", Some(("a", ".b/c"))),
        ("x/a.b/c", Some(("x/a", ".b/c"))),
        ("a.b/c.d/e", Some(("a.b/c", ".d/e"))),
        ("a/.b.c/d", Some(("a/", ".b.c/d"))),
        (".hidden", Some(("", ".hidden"))),
        ("dir/.hidden", Some(("dir/", ".hidden"))),
        ("a.", Some(("a", "."))),
        ("noext", None),
        ("dir/noext", None),
    ];
    for (name, want) in cases {
        assert_eq!(split(name), *want, "{name}");
    }
}

/// The wids regex, followed literally: `(?:.*/)?` tries the longest prefix ending in a
/// slash first, then shorter ones, then none; `.*?` then takes the first dot after it.
fn regex_oracle(name: &[u8]) -> Option<usize> {
    let mut prefixes: Vec<usize> = (0..name.len())
        .filter(|&i| name[i] == b'/')
        .map(|i| i + 1)
        .collect();
    prefixes.reverse();
    prefixes.push(0);
    for p in prefixes {
        // The lazy `.*?` stops at the first dot after the prefix.
        if let Some(q) = name[p..].iter().position(|&b| b == b'.') {
            return Some(p + q);
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn wids_split_matches_the_regex(name in "[a./]{0,10}") {
        prop_assert_eq!(wids_split(name.as_bytes()), regex_oracle(name.as_bytes()));
        // Wherever webdataset splits a name, wids puts the key boundary at the same place.
        if let Some(k) = split_key(name.as_bytes()) {
            prop_assert_eq!(wids_split(name.as_bytes()), Some(k));
        }
    }
}

#[test]
fn groups_adjacent_members_and_reads_exact_bytes() {
    let s = Scratch::new();
    let tar = build(&[
        (b"a.jpg", b"JPEG"),
        (b"a.cls", b"1"),
        (b"b.jpg", b""),
        (b"b.seg.png", &[9u8; 1000]),
        (b"dir/c.txt", b"text"),
    ]);
    let idx = open(&s.file("s.tar", &tar));
    assert_eq!(idx.len(), 3);
    assert_eq!(idx.source(), IndexSource::Built);
    let got = decoded(&idx);
    assert_eq!(got[0].0, "a");
    assert_eq!(
        got[0].1,
        vec![
            (".jpg".into(), b"JPEG".to_vec()),
            (".cls".into(), b"1".to_vec())
        ]
    );
    assert_eq!(
        got[1].1,
        vec![
            (".jpg".into(), vec![]),
            (".seg.png".into(), vec![9u8; 1000])
        ]
    );
    assert_eq!(got[2].0, "dir/c");
    let first = idx.data().members(0).next().unwrap();
    assert_eq!((first.data_offset, first.size), (512, 4));
}

#[test]
fn full_names_from_prefix_pax_and_gnu_headers() {
    let s = Scratch::new();
    let prefixed = format!("{}/sample.txt", "d".repeat(120));
    let pax = format!("{}/{}.txt", "x".repeat(200), "y".repeat(150));
    let gnu = format!("{}/k.bin", "z".repeat(300));
    let mut tar = Vec::new();
    // Hand-made GNU 'L' entry carrying the long name of the member after it.
    let meta = MemberMeta::default();
    let mut l = encode_header(b"././@LongLink", gnu.len() as u64 + 1, &meta);
    l[156] = b'L';
    fix_checksum(&mut l[..BLOCK]);
    tar.extend_from_slice(&l);
    let mut body = gnu.as_bytes().to_vec();
    body.push(0);
    body.resize(body.len().div_ceil(BLOCK) * BLOCK, 0);
    tar.extend_from_slice(&body);
    tar.extend_from_slice(&encode_header(&gnu.as_bytes()[..100], 4, &meta));
    tar.extend_from_slice(b"GNU!");
    tar.resize(tar.len().div_ceil(BLOCK) * BLOCK, 0);
    // The rest via the writer (ustar prefix and pax path), then the end marker.
    let rest = build(&[(prefixed.as_bytes(), b"P"), (pax.as_bytes(), b"X")]);
    tar.extend_from_slice(&rest);
    let idx = open(&s.file("long.tar", &tar));
    let got = decoded(&idx);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0],
        (
            format!("{}/k", "z".repeat(300)),
            vec![(".bin".into(), b"GNU!".to_vec())]
        )
    );
    assert_eq!(
        got[1],
        (
            format!("{}/sample", "d".repeat(120)),
            vec![(".txt".into(), b"P".to_vec())]
        )
    );
    assert_eq!(got[2].0, format!("{}/{}", "x".repeat(200), "y".repeat(150)));
    assert_eq!(got[2].1[0].1, b"X");
    let names: Vec<Vec<u8>> = (0..3)
        .flat_map(|i| idx.data().members(i).map(|m| m.name.to_vec()))
        .collect();
    assert_eq!(names[0], gnu.as_bytes());
    assert_eq!(names[1], prefixed.as_bytes());
    assert_eq!(names[2], pax.as_bytes());
}

#[test]
fn duplicates_never_shift_later_reads() {
    let s = Scratch::new();
    let tar = build(&[
        (b"x.txt", b"x1"),
        (b"x.txt", b"x2"),
        (b"y.txt", b"y"),
        (b"z.txt", b"z"),
        (b"y.txt", b"y again"),
    ]);
    let idx = open(&s.file("dup.tar", &tar));
    let got = decoded(&idx);
    let keys: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(keys, ["x", "y", "z", "y"]);
    assert_eq!(
        got[0].1,
        vec![
            (".txt".into(), b"x1".to_vec()),
            (".txt".into(), b"x2".to_vec())
        ]
    );
    assert_eq!(got[1].1[0].1, b"y");
    assert_eq!(got[2].1[0].1, b"z");
    assert_eq!(got[3].1[0].1, b"y again");
}

#[test]
fn skips_names_without_dot_metadata_and_non_files() {
    let s = Scratch::new();
    let meta = MemberMeta::default();
    let mut tar = Vec::new();
    let mut dir = encode_header(b"a.d/", 0, &meta);
    dir[156] = b'5';
    fix_checksum(&mut dir[..BLOCK]);
    tar.extend_from_slice(&dir);
    let mut link = encode_header(b"link.txt", 0, &meta);
    link[156] = b'2';
    fix_checksum(&mut link[..BLOCK]);
    tar.extend_from_slice(&link);
    let rest = build(&[
        (b"__meta__", b"m"),
        (b"__index__/k.txt", b"i"),
        (b"README", b"r"),
        (b"a.d/b", b"odd"),
        (b"k.txt", b"k"),
    ]);
    tar.extend_from_slice(&rest);
    let idx = open(&s.file("skip.tar", &tar));
    let got = decoded(&idx);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], ("a".into(), vec![(".d/b".into(), b"odd".to_vec())]));
    assert_eq!(got[1].0, "k");
    assert_eq!(idx.data().skipped, 3);
}

#[test]
fn damage_is_reported_with_member_and_offset() {
    let s = Scratch::new();
    let good = build(&[(b"a.txt", b"hello"), (b"b.txt", &[7u8; 3000])]);

    let mut bad = good.clone();
    bad[2 * BLOCK + 140] ^= 0x11;
    let err = ShardIndex::open(&s.file("bad.tar", &bad), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::BadHeader(_)), "{err}");
    assert_eq!(err.offset, Some(2 * BLOCK as u64));
    assert_eq!(err.member.as_deref(), Some("b.txt"));

    let err = ShardIndex::open(
        &s.file("cut.tar", &good[..BLOCK * 3 + 100]),
        &OpenOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Truncated(_)), "{err}");
    assert_eq!(err.member.as_deref(), Some("b.txt"));
    assert_eq!(err.offset, Some(2 * BLOCK as u64));

    let err = ShardIndex::open(&s.file("empty.tar", b""), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Truncated(_)), "{err}");

    let err = ShardIndex::open(
        &s.file("x.tar.gz", &[0x1f, 0x8b, 8, 0, 0, 0]),
        &OpenOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unsupported(_)), "{err}");

    let err = ShardIndex::open(&s.0.join("missing.tar"), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Io(_)), "{err}");
}

#[test]
fn empty_archive_has_no_samples() {
    let s = Scratch::new();
    let idx = open(&s.file("e.tar", &build(&[])));
    assert!(idx.is_empty());
}

#[test]
fn sidecar_is_reused_then_rebuilt_when_stale_or_corrupt() {
    let s = Scratch::new();
    let tar = build(&[(b"a.txt", b"1"), (b"b.txt", b"2"), (b"b.cls", b"3")]);
    let shard = s.file("s.tar", &tar);
    let side = s.0.join("s.tar.idx");
    let opts = OpenOptions {
        sidecar: Some(side.clone()),
    };
    let first = ShardIndex::open(&shard, &opts).unwrap();
    assert_eq!(first.source(), IndexSource::Built);
    assert!(side.exists());
    let again = ShardIndex::open(&shard, &opts).unwrap();
    assert_eq!(again.source(), IndexSource::Sidecar);
    assert_eq!(again.data(), first.data());
    assert_eq!(decoded(&again), decoded(&first));

    // A new modification time makes the sidecar stale.
    let f = fs::File::options().write(true).open(&shard).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(f);
    let stale = ShardIndex::open(&shard, &opts).unwrap();
    assert_eq!(stale.source(), IndexSource::Built);
    assert!(
        stale.sidecar_error().unwrap().contains("stale"),
        "{:?}",
        stale.sidecar_error()
    );
    assert_eq!(
        ShardIndex::open(&shard, &opts).unwrap().source(),
        IndexSource::Sidecar
    );

    // Flipped bits and a cut file are both detected and rebuilt.
    let mut bytes = fs::read(&side).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&side, &bytes).unwrap();
    let damaged = ShardIndex::open(&shard, &opts).unwrap();
    assert_eq!(damaged.source(), IndexSource::Built);
    assert!(damaged.sidecar_error().unwrap().contains("checksum"));
    let bytes = fs::read(&side).unwrap();
    fs::write(&side, &bytes[..bytes.len() - 3]).unwrap();
    assert_eq!(
        ShardIndex::open(&shard, &opts).unwrap().source(),
        IndexSource::Built
    );
    fs::write(&side, b"garbage").unwrap();
    let rebuilt = ShardIndex::open(&shard, &opts).unwrap();
    assert_eq!(rebuilt.source(), IndexSource::Built);
    assert_eq!(decoded(&rebuilt), decoded(&first));

    // An unwritable sidecar location is reported, not fatal.
    let nowhere = OpenOptions {
        sidecar: Some(s.0.join("no-such-dir").join("x.idx")),
    };
    let idx = ShardIndex::open(&shard, &nowhere).unwrap();
    assert_eq!(idx.len(), 2);
    assert!(idx.sidecar_error().unwrap().contains("cannot write"));
}

#[test]
fn decode_rejects_out_of_range_entries_even_with_a_valid_checksum() {
    let tar = build(&[(b"a.txt", b"hello")]);
    let mut data = IndexData::build(&tar).unwrap();
    let stamp = FileStamp {
        size: tar.len() as u64,
        mtime_sec: 1,
        mtime_nsec: 2,
    };
    assert_eq!(
        IndexData::decode(&data.encode(&stamp), &stamp).unwrap(),
        data
    );
    data.members[0].size = tar.len() as u64;
    let err = IndexData::decode(&data.encode(&stamp), &stamp).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    let other = FileStamp { size: 1, ..stamp };
    assert!(IndexData::decode(&data.encode(&stamp), &other).is_err());
}

fn arb_shard() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = "([a-c]{1,3}/)?[a-d]{1,2}\\.[a-z]{1,3}(\\.gz)?";
    prop::collection::vec((name, prop::collection::vec(any::<u8>(), 0..1100)), 0..16)
}

/// Expected samples, computed the slow obvious way from the member list.
fn expected(members: &[(String, Vec<u8>)]) -> Decoded {
    let mut out: Decoded = Vec::new();
    for (name, data) in members {
        let k = regex_oracle(name.as_bytes()).unwrap();
        let (key, ext) = (&name[..k], &name[k..]);
        match out.last_mut() {
            Some((last, m)) if last == key => m.push((ext.to_string(), data.clone())),
            _ => out.push((key.to_string(), vec![(ext.to_string(), data.clone())])),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn index_matches_members_and_survives_the_sidecar(members in arb_shard()) {
        let s = Scratch::new();
        let refs: Vec<(&[u8], &[u8])> = members.iter().map(|(n, d)| (n.as_bytes(), d.as_slice())).collect();
        let shard = s.file("p.tar", &build(&refs));
        let opts = OpenOptions { sidecar: Some(s.0.join("p.idx")) };
        let built = ShardIndex::open(&shard, &opts).unwrap();
        prop_assert_eq!(decoded(&built), expected(&members));
        let loaded = ShardIndex::open(&shard, &opts).unwrap();
        // A sample that repeats an extension is walked again on purpose (exact offsets).
        let repeats = expected(&members).iter().any(|(_, m)| {
            m.iter().enumerate().any(|(i, (e, _))| m[..i].iter().any(|(f, _)| f == e))
        });
        let source = if repeats { IndexSource::Built } else { IndexSource::Sidecar };
        prop_assert_eq!(loaded.source(), source);
        prop_assert_eq!(decoded(&loaded), expected(&members));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000), flip in any::<usize>()) {
        let _ = IndexData::build(&bytes);
        let tar = build(&[(b"a.txt", b"hello"), (b"a.cls", b"7")]);
        let mut damaged = tar.clone();
        let i = flip % damaged.len();
        damaged[i] ^= 0x5a;
        if let Ok(data) = IndexData::build(&damaged) {
            prop_assert!(data.validate(damaged.len() as u64).is_ok());
        }
        let stamp = FileStamp { size: tar.len() as u64, mtime_sec: 0, mtime_nsec: 0 };
        let _ = IndexData::decode(&bytes, &stamp);
    }
}
