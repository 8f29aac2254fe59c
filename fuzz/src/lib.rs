//! Fuzz target bodies, shared by the cargo-fuzz binaries (`fuzz_targets/`) and the
//! corpus replay test (`tests/corpus.rs`), so CI runs the same checks without libFuzzer.
//!
//! Every target must return normally on any input: a panic (including an arithmetic
//! overflow under debug assertions) or a broken invariant is a bug.

use std::io::{self, BufRead, BufReader, Cursor, Read, Write};

use ppwds_core::group::{Grouper, Rejected};
use ppwds_core::index::{FileStamp, IndexData, MemberRec};
use ppwds_core::samples::{FillLimits, OwnedSample, Payload, SampleStream, Stop};
use ppwds_core::source::{tar_stream, Compression, DynRead};
use ppwds_core::tar::{ReadOptions, TarReader};
use ppwds_core::Error;

/// Hands out at most a few bytes per `read`, the count varying from call to call.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    step: usize,
    turn: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.turn = self.turn.wrapping_add(1);
        let n = 1 + (self.step + self.turn * 7) % 613;
        let n = n.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What reading a shard produced: samples, then at most one error (kind, offset, member).
type Outcome = (
    Vec<OwnedSample>,
    Option<(&'static str, Option<u64>, Option<String>)>,
);

fn summary(e: &Error) -> (&'static str, Option<u64>, Option<String>) {
    (e.kind_name(), e.offset, e.member.clone())
}

/// Reads samples with the given limits; big members go through `read_data_vec`.
fn read_samples<R: BufRead>(src: R, opts: ReadOptions, limits: FillLimits) -> Outcome {
    let mut s: SampleStream<R, Vec<u8>> = SampleStream::with_options(src, opts);
    let mut out = Vec::new();
    let mut guard = 0u32;
    loop {
        guard += 1;
        assert!(guard < 1_000_000, "fill made no progress");
        let mut batch = Vec::new();
        let mut stop = s.fill(&mut batch, limits, &mut ppwds_core::samples::keep_all);
        if let Stop::Big(entry) = &stop {
            let name = entry.name.clone();
            match s.reader().read_data_vec() {
                Ok(data) => {
                    assert_eq!(data.len() as u64, entry.size);
                    batch.extend(s.deliver(Payload::External(data)));
                    stop = Stop::Full;
                }
                Err(e) => stop = s.abort(e.with_member(&name)),
            }
        }
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
            Stop::Full | Stop::Big(_) => {}
            Stop::End => return (out, None),
            // Soft errors (duplicates) do not end the shard; keep reading like the binding.
            Stop::Soft(e) => {
                if s.is_finished() {
                    return (out, Some(summary(&e)));
                }
            }
            Stop::Fatal(e) => return (out, Some(summary(&e))),
        }
    }
}

/// Walks members one by one, reading or skipping each, checking offsets.
fn walk_members<R: BufRead>(src: R, opts: ReadOptions, skip_mask: u8) {
    let mut r = TarReader::with_options(src, opts);
    let mut last_end = 0u64;
    let mut i = 0u32;
    loop {
        match r.next_entry() {
            Ok(Some(e)) => {
                assert!(e.header_offset >= last_end, "entries go backwards");
                assert!(e.data_offset >= e.header_offset + 512);
                assert_eq!(e.data_offset % 512, 0);
                assert_eq!(r.position(), e.data_offset);
                last_end = e.data_offset;
                let res = if skip_mask & (1 << (i % 8)) != 0 {
                    r.skip_data()
                } else {
                    r.read_data_vec()
                        .map(|d| assert_eq!(d.len() as u64, e.size))
                };
                if res.is_err() {
                    assert!(r.is_done());
                    assert!(r.next_entry().unwrap().is_none());
                    return;
                }
                i += 1;
            }
            Ok(None) => {
                assert!(r.is_done());
                return;
            }
            Err(_) => {
                assert!(r.is_done());
                assert!(
                    r.next_entry().unwrap().is_none(),
                    "no entries after an error"
                );
                return;
            }
        }
    }
}

/// Tar reader target. Byte 0 picks the source (plain, gzip- or bzip2-compressed payload,
/// or the payload as is with compression autodetected) and the end-of-archive options;
/// byte 1 the chunk pattern and limits. The payload is read through `tar_stream` in one
/// piece and again in odd-sized chunks: both must give the same samples and error.
pub fn tar_reader(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (mode, seed, payload) = (data[0], data[1], &data[2..]);
    let bytes = match mode & 3 {
        1 => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(payload).unwrap();
            let mut gz = enc.finish().unwrap();
            // Sometimes damage the trailer or add padding / another member.
            match seed % 5 {
                1 if gz.len() > 8 => {
                    let n = gz.len();
                    gz[n - 1 - usize::from(seed >> 5)] ^= 1;
                }
                2 => gz.extend([0u8; 7]),
                3 => gz.extend(b"junk"),
                _ => {}
            }
            gz
        }
        2 => {
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            enc.write_all(payload).unwrap();
            enc.finish().unwrap()
        }
        _ => payload.to_vec(),
    };
    let opts = ReadOptions {
        ignore_zeros: mode & 4 != 0,
        check_after_end: mode & 8 != 0,
    };
    let limits = FillLimits {
        max_samples: 1 + usize::from(seed % 4),
        max_bytes: 1 + u64::from(seed) * 97,
        big_member: u64::from(mode >> 4) * 300,
    };

    let whole = tar_stream(Box::new(Cursor::new(bytes.clone())));
    let chunked_src: DynRead = Box::new(Chunked {
        data: bytes.clone(),
        pos: 0,
        step: usize::from(seed),
        turn: 0,
    });
    let chunked = tar_stream(chunked_src);
    let (whole, chunked, compression) = match (whole, chunked) {
        (Ok((w, kind)), Ok((c, _))) => (w, c, kind),
        (Err(a), Err(b)) => {
            assert_eq!(summary(&a), summary(&b));
            return;
        }
        _ => panic!("opening depends on the chunking"),
    };
    let a = read_samples(whole, opts, FillLimits::default());
    let b = read_samples(chunked, opts, limits);
    if compression != Compression::None && (a.1.is_some() || b.1.is_some()) {
        // A decompressor drops the output of a failing call, so how much data comes out
        // before an error depends on the chunking: only agreement up to it is required.
        assert!(a.1.is_some() && b.1.is_some(), "{a:?} vs {b:?}");
        let n = a.0.len().min(b.0.len());
        assert_eq!(a.0[..n], b.0[..n]);
    } else {
        assert_eq!(a, b, "chunking or limits changed the outcome");
    }
    if let Some((_, Some(offset), _)) = &a.1 {
        // Offsets point into the (decompressed) input; for plain input, inside it.
        if compression == Compression::None {
            assert!(*offset <= bytes.len() as u64);
        }
    }

    // Member level, with a small odd read buffer on plain input.
    if compression == Compression::None {
        let cap = 1 + usize::from(seed) * 5;
        let src = BufReader::with_capacity(
            cap,
            Chunked {
                data: bytes,
                pos: 0,
                step: usize::from(mode),
                turn: 0,
            },
        );
        walk_members(src, opts, seed);
    }
}

/// Sample grouping target: names are the input's lines; the grouper must keep keys
/// adjacent-distinct, extensions unique per sample, and lose no accepted member.
pub fn group(data: &[u8]) {
    let lcase = data.first().is_some_and(|b| b & 1 == 1);
    let mut g: Grouper<usize> = Grouper::new(lcase);
    let mut done = Vec::new();
    let mut accepted = 0usize;
    for (i, name) in data.split(|&b| b == b'\n').enumerate().skip(1) {
        match g.check(name) {
            Ok(split) => {
                assert!(split.key_len < name.len());
                assert!((split.ext as usize) < g.ext_count());
                accepted += 1;
                done.extend(g.push(name, split, i));
            }
            Err(Rejected::NoKey) => {}
            Err(Rejected::Duplicate { key, .. }) => {
                assert!(g.has_current());
                assert!(name.starts_with(&key));
            }
        }
    }
    done.extend(g.finish());
    assert_eq!(
        done.iter().map(|s| s.members.len()).sum::<usize>(),
        accepted
    );
    for w in done.windows(2) {
        assert_ne!(w[0].key, w[1].key, "adjacent samples share a key");
    }
    for s in &done {
        let mut exts: Vec<u32> = s.members.iter().map(|m| m.0).collect();
        exts.sort_unstable();
        exts.dedup();
        assert_eq!(
            exts.len(),
            s.members.len(),
            "duplicate extension in a sample"
        );
    }
}

fn check_index(idx: &IndexData, file_size: u64) {
    idx.validate(file_size)
        .expect("a built or decoded index validates");
    for i in 0..idx.len() {
        let _ = idx.key(i);
        for m in idx.members(i) {
            assert!(m.data_offset + m.size <= file_size);
            assert!(m.name.ends_with(m.ext));
        }
    }
}

/// Index build target: building from any bytes fails cleanly or gives an index that
/// validates, stays inside the data and survives an encode/decode round trip.
pub fn index_build(data: &[u8]) {
    let Ok(idx) = IndexData::build(data) else {
        return;
    };
    check_index(&idx, data.len() as u64);
    let stamp = FileStamp {
        size: data.len() as u64,
        mtime_sec: 1,
        mtime_nsec: 2,
    };
    let back = IndexData::decode(&idx.encode(&stamp), &stamp).expect("round trip");
    assert_eq!(back, idx);
}

fn u64_from(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// Sidecar decode target: raw bytes as a sidecar, and an index made of arbitrary
/// records (encoded with a valid checksum, so decode's own validation is what stands
/// between it and the readers). Decoding must fail cleanly or give a safe index.
pub fn sidecar_decode(data: &[u8]) {
    // The stamp the file claims (bytes 8..28 of the layout), so decoding gets past it.
    let claimed = FileStamp {
        size: u64_from(data.get(8..16).unwrap_or(&[])),
        mtime_sec: u64_from(data.get(16..24).unwrap_or(&[])) as i64,
        mtime_nsec: u64_from(data.get(24..28).unwrap_or(&[])) as u32,
    };
    if let Ok(idx) = IndexData::decode(data, &claimed) {
        check_index(&idx, claimed.size);
    }
    let size = claimed.size % (1 << 20);
    let stamp = FileStamp {
        size,
        mtime_sec: 0,
        mtime_nsec: 0,
    };
    // Structured: 16 bytes per member record, then 2 bytes per sample start, rest names.
    let body = data.get(8..).unwrap_or(&[]);
    let n_members = usize::from(body.first().copied().unwrap_or(0) % 8);
    let n_samples = usize::from(body.get(1).copied().unwrap_or(0) % 8);
    let mut rest = body.get(2..).unwrap_or(&[]);
    let mut take = |n: usize| {
        let (a, b) = rest.split_at(n.min(rest.len()));
        rest = b;
        a
    };
    let members: Vec<MemberRec> = (0..n_members)
        .map(|_| {
            let r = take(16);
            MemberRec {
                data_offset: u64_from(r.get(..4).unwrap_or(r)) * 512,
                size: u64_from(r.get(4..8).unwrap_or(&[])),
                name_start: u64_from(r.get(8..10).unwrap_or(&[])),
                name_len: u64_from(r.get(10..12).unwrap_or(&[])) as u32,
                key_len: u64_from(r.get(12..14).unwrap_or(&[])) as u32,
            }
        })
        .collect();
    let samples: Vec<u64> = (0..=n_samples).map(|_| u64_from(take(2)) % 16).collect();
    let idx = IndexData {
        names: rest.to_vec(),
        members,
        samples,
        skipped: 0,
    };
    if let Ok(back) = IndexData::decode(&idx.encode(&stamp), &stamp) {
        assert_eq!(back, idx);
        check_index(&back, size);
    }
}
