//! `lint_shard`: one pass over a local shard for `ppwebdataset lint` / `inspect`.
//!
//! Built on the core's public `TarReader`, so every check the reader gains shows up here.
//! Payloads are skipped, never copied into Python; only names, sizes and findings cross
//! the boundary, so a plain tar is checked at the speed its bytes can be read.

use crate::fnv::{fnv, FnvBuild};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;

use ppwds_core::keys::{is_meta, split_key};
use ppwds_core::source::{open_path, Compression};
use ppwds_core::tar::header::{parse_block, Block};
use ppwds_core::tar::{TarReader, BLOCK};
use ppwds_core::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{to_pyerr, ShardContext};

/// Severity of a finding: errors mean the shard is damaged or will fail to read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Error,
    Warning,
}

struct Issue {
    level: Level,
    code: &'static str,
    message: String,
    member: Option<String>,
    offset: Option<u64>,
}

#[derive(Default, Clone)]
struct ExtStats {
    count: u64,
    bytes: u64,
    min: u64,
    max: u64,
}

struct Options {
    max_member_size: Option<u64>,
    list_members: bool,
    first_keys: usize,
    max_issues: usize,
}

#[derive(Default)]
struct Report {
    compression: &'static str,
    file_size: u64,
    tar_bytes: u64,
    members: u64,
    samples: u64,
    skipped: u64,
    exts: Vec<(String, ExtStats)>,
    first_keys: Vec<String>,
    issues: Vec<Issue>,
    /// Issues left out per code once `max_issues` of that code were recorded.
    suppressed: HashMap<&'static str, u64>,
    member_list: Vec<(String, u64, u64)>,
}

impl Report {
    fn push(&mut self, max: usize, issue: Issue) {
        let seen = self.issues.iter().filter(|i| i.code == issue.code).count();
        if seen >= max {
            *self.suppressed.entry(issue.code).or_default() += 1;
        } else {
            self.issues.push(issue);
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Short codes for reader errors, stable for `--json` users.
fn error_code(err: &Error) -> &'static str {
    match err.kind {
        ErrorKind::Truncated(_) => "truncated",
        ErrorKind::BadHeader(_) => "bad-header",
        ErrorKind::Decompress(_) => "corrupt-compression",
        ErrorKind::Unsupported(_) => "unsupported",
        ErrorKind::DuplicateMember { .. } => "duplicate-member",
        ErrorKind::Io(_) => "io",
        _ => "invalid",
    }
}

fn reader_issue(err: Error) -> Issue {
    let reason = err.reason();
    // A reader that checks past the end marker itself reports the hidden header as a bad header.
    let code = if reason.contains("follows the end-of-archive marker") {
        "zero-block"
    } else {
        error_code(&err)
    };
    Issue {
        level: Level::Error,
        code,
        message: reason,
        member: err.member.clone(),
        offset: err.offset,
    }
}

/// An extension webdataset's decoders will not recognise as written: case, spaces, odd bytes.
fn odd_extension(ext: &[u8]) -> bool {
    ext.is_empty()
        || ext.len() > 32
        || ext.ends_with(b".")
        || !ext
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Extension ids at or above this are counted but not tracked per sample (missing-field check).
const MASK_BITS: u32 = 64;

/// Every sample seen so far, stored without an allocation per sample so that shards of tiny
/// members are checked as fast as their headers can be read.
#[derive(Default)]
struct Samples {
    /// All keys back to back; sample `i` is `keys[key_ends[i-1]..key_ends[i]]`.
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    offsets: Vec<u64>,
    /// Bit `id` is set when the sample has extension `id` (for ids below `MASK_BITS`).
    masks: Vec<u64>,
    /// Extension ids of the current sample at or above `MASK_BITS` (duplicate check only).
    current_high: Vec<u32>,
    /// Hashes of every key started so far (a key that starts again splits its sample).
    seen: HashSet<u64, FnvBuild>,
}

impl Samples {
    fn len(&self) -> usize {
        self.offsets.len()
    }

    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
        &self.keys[start..self.key_ends[i]]
    }

    fn current_key(&self) -> Option<&[u8]> {
        self.len().checked_sub(1).map(|i| self.key(i))
    }

    /// Starts a sample; false when its key was seen before.
    fn start(&mut self, key: &[u8], offset: u64) -> bool {
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len());
        self.offsets.push(offset);
        self.masks.push(0);
        self.current_high.clear();
        self.seen.insert(fnv(key))
    }

    /// Adds extension `id` to the current sample; false when it already has it.
    fn add(&mut self, id: u32) -> bool {
        if id < MASK_BITS {
            let mask = self.masks.last_mut().expect("a sample was started");
            let had = *mask & (1 << id) != 0;
            *mask |= 1 << id;
            !had
        } else if self.current_high.contains(&id) {
            false
        } else {
            self.current_high.push(id);
            true
        }
    }
}

/// Extension names and ids: a short linear search covers the usual handful of extensions.
#[derive(Default)]
struct Extensions {
    names: Vec<Vec<u8>>,
    stats: Vec<ExtStats>,
    map: HashMap<Vec<u8>, u32, FnvBuild>,
}

impl Extensions {
    const LINEAR: usize = 16;

    fn id(&mut self, ext: &[u8]) -> u32 {
        if let Some(i) = self.names.iter().take(Self::LINEAR).position(|n| n == ext) {
            return i as u32;
        }
        if self.names.len() > Self::LINEAR {
            if let Some(&id) = self.map.get(ext) {
                return id;
            }
        }
        let id = self.names.len() as u32;
        self.names.push(ext.to_vec());
        self.map.insert(ext.to_vec(), id);
        self.stats.push(ExtStats {
            min: u64::MAX,
            ..ExtStats::default()
        });
        id
    }
}

fn scan(path: &std::path::Path, opts: &Options) -> Result<Report, Error> {
    let file_size = std::fs::metadata(path)
        .map_err(|e| Error::from(ErrorKind::Io(e)))?
        .len();
    let (mut stream, compression) = open_path(path)?;
    let mut rep = Report {
        compression: match compression {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        },
        file_size,
        ..Report::default()
    };
    let max = opts.max_issues;
    let mut exts = Extensions::default();
    let mut samples = Samples::default();
    // Room for the keys of a shard of small samples up front: growing the set rehashes it.
    samples
        .seen
        .reserve((file_size / 4096).min(1 << 20) as usize);
    let mut reached_end = false;

    {
        let mut reader = TarReader::new(&mut stream);
        loop {
            let entry = match reader.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => {
                    reached_end = reader.is_done();
                    break;
                }
                Err(e) => {
                    rep.push(usize::MAX, reader_issue(e));
                    break;
                }
            };
            rep.members += 1;
            if opts.list_members {
                rep.member_list
                    .push((lossy(&entry.name), entry.header_offset, entry.size));
            }
            let name = &entry.name;
            if let Some(limit) = opts.max_member_size {
                if entry.size > limit {
                    rep.push(
                        max,
                        Issue {
                            level: Level::Warning,
                            code: "large-member",
                            message: format!(
                                "member of {} bytes is over the {limit}-byte limit",
                                entry.size
                            ),
                            member: Some(lossy(name)),
                            offset: Some(entry.header_offset),
                        },
                    );
                }
            }
            let split = if is_meta(name) { None } else { split_key(name) };
            match split {
                None => {
                    rep.skipped += 1;
                    if !is_meta(name) {
                        rep.push(
                            max,
                            Issue {
                                level: Level::Warning,
                                code: "no-key",
                                message:
                                    "member name has no key.extension split: it joins no sample"
                                        .into(),
                                member: Some(lossy(name)),
                                offset: Some(entry.header_offset),
                            },
                        );
                    }
                }
                Some(k) => {
                    let (key, ext) = (&name[..k], &name[k + 1..]);
                    let id = exts.id(ext);
                    let st = &mut exts.stats[id as usize];
                    st.count += 1;
                    st.bytes += entry.size;
                    st.min = st.min.min(entry.size);
                    st.max = st.max.max(entry.size);
                    if samples.current_key() != Some(key) {
                        if !samples.start(key, entry.header_offset) {
                            rep.push(
                                max,
                                Issue {
                                    level: Level::Warning,
                                    code: "split-sample",
                                    message: format!(
                                        "key {:?} appears again after other samples: \
                                         its members form two samples",
                                        lossy(key)
                                    ),
                                    member: None,
                                    offset: Some(entry.header_offset),
                                },
                            );
                        }
                        if rep.first_keys.len() < opts.first_keys {
                            rep.first_keys.push(lossy(key));
                        }
                    }
                    if !samples.add(id) {
                        rep.push(
                            max,
                            Issue {
                                level: Level::Error,
                                code: "duplicate-member",
                                message: format!(
                                    "sample {:?} already has extension {:?}",
                                    lossy(key),
                                    lossy(ext)
                                ),
                                member: Some(lossy(name)),
                                offset: Some(entry.header_offset),
                            },
                        );
                    }
                }
            }
        }
        rep.tar_bytes = reader.position();
    }

    if reached_end {
        check_after_end(&mut stream, rep.tar_bytes, &mut rep);
    }

    // Extensions: odd spellings, dotted ones that vary per sample, and fields most samples have.
    rep.samples = samples.len() as u64;
    let nsamples = rep.samples;
    for (id, name) in exts.names.iter().enumerate() {
        let st = &exts.stats[id];
        if odd_extension(name) {
            rep.push(
                max,
                Issue {
                    level: Level::Warning,
                    code: "odd-extension",
                    message: format!(
                        "extension {:?} ({} members) is not lower-case letters, digits, '.', '_' or '-'",
                        lossy(name),
                        st.count
                    ),
                    member: None,
                    offset: None,
                },
            );
        }
        if name.contains(&b'.') && st.count * 2 < nsamples.max(2) {
            rep.push(
                max,
                Issue {
                    level: Level::Warning,
                    code: "dotted-key",
                    message: format!(
                        "extension {:?} in only {} of {nsamples} samples: a dot in a file's base name \
                         starts the extension, so the key was probably meant to include {:?}",
                        lossy(name),
                        st.count,
                        lossy(&name[..name.iter().position(|&b| b == b'.').unwrap_or(0)])
                    ),
                    member: None,
                    offset: None,
                },
            );
        }
    }
    if nsamples >= 2 {
        // A field in more than half the samples (counted once per sample) is expected in all.
        let tracked = exts.names.len().min(MASK_BITS as usize);
        let mut per_sample = vec![0u64; tracked];
        for &mask in &samples.masks {
            for (id, n) in per_sample.iter_mut().enumerate() {
                *n += (mask >> id) & 1;
            }
        }
        for (id, &have) in per_sample.iter().enumerate() {
            if have * 2 > nsamples && have < nsamples {
                let missing: Vec<usize> = (0..samples.len())
                    .filter(|&i| samples.masks[i] & (1 << id) == 0)
                    .collect();
                let examples: Vec<String> = missing
                    .iter()
                    .take(3)
                    .map(|&i| format!("{:?}", lossy(samples.key(i))))
                    .collect();
                rep.push(
                    max,
                    Issue {
                        level: Level::Warning,
                        code: "missing-field",
                        message: format!(
                            "{} of {nsamples} samples lack {:?}, which the others have (e.g. {})",
                            missing.len(),
                            lossy(&exts.names[id]),
                            examples.join(", ")
                        ),
                        member: None,
                        offset: Some(samples.offsets[missing[0]]),
                    },
                );
            }
        }
    }
    if nsamples == 0 && rep.issues.iter().all(|i| i.level != Level::Error) {
        rep.push(
            max,
            Issue {
                level: Level::Error,
                code: "empty",
                message: "the shard holds no samples".into(),
                member: None,
                offset: None,
            },
        );
    }
    rep.exts = exts
        .names
        .into_iter()
        .zip(exts.stats)
        .map(|(n, s)| (lossy(&n), s))
        .collect();
    Ok(rep)
}

/// After the end-of-archive marker: a header that still parses means a zero block cut the shard
/// short (tar would stop there silently); other non-zero bytes are trailing garbage. Reading to
/// the end also makes a decompressor check its trailer (gzip CRC and length).
fn check_after_end(stream: &mut impl Read, end: u64, rep: &mut Report) {
    let mut block = [0u8; BLOCK];
    let mut pos = end;
    let mut reported_garbage = false;
    let mut reported_header = false;
    loop {
        let mut got = 0;
        while got < BLOCK {
            match stream.read(&mut block[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    rep.push(usize::MAX, reader_issue(Error::io(e, pos + got as u64)));
                    return;
                }
            }
        }
        if got == 0 {
            return;
        }
        if block[..got].iter().any(|&b| b != 0) {
            let header = got == BLOCK && matches!(parse_block(&block), Ok(Block::Header(_)));
            if header && !reported_header {
                reported_header = true;
                let name = &block[..100];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(100)];
                rep.push(
                    usize::MAX,
                    Issue {
                        level: Level::Error,
                        code: "zero-block",
                        message: "a valid member header follows the end-of-archive marker: \
                                  zero blocks in the middle of the shard hide the rest of it"
                            .into(),
                        member: Some(lossy(name)),
                        offset: Some(pos),
                    },
                );
                // Keep draining for the decompressor's check, but one report is enough.
                reported_garbage = true;
            } else if !reported_garbage && !header {
                reported_garbage = true;
                rep.push(
                    usize::MAX,
                    Issue {
                        level: Level::Warning,
                        code: "trailing-data",
                        message: "non-zero bytes after the end-of-archive marker".into(),
                        member: None,
                        offset: Some(pos),
                    },
                );
            }
        }
        pos += got as u64;
    }
}

/// Scans one local shard (plain, gzip or bzip2 tar) without handing payloads to Python.
///
/// Returns a dict: `compression`, `file_size`, `tar_bytes`, `members`, `samples`, `skipped`,
/// `extensions` (`{ext: (count, total_bytes, min_size, max_size)}`), `first_keys`, `issues`
/// (`(level, code, message, member, offset)` with level `"error"` or `"warning"`),
/// `suppressed` (`{code: count}` beyond `max_issues` per code) and, with `members=True`,
/// `member_list` (`(name, header_offset, size)`). Damage is reported in `issues`, not raised;
/// a file that cannot be opened raises `OSError`. The GIL is released during the scan.
#[pyfunction]
#[pyo3(signature = (path, *, max_member_size=None, members=false, first_keys=5, max_issues=20))]
pub fn lint_shard(
    py: Python<'_>,
    path: PathBuf,
    max_member_size: Option<u64>,
    members: bool,
    first_keys: usize,
    max_issues: usize,
) -> PyResult<Py<PyDict>> {
    let opts = Options {
        max_member_size,
        list_members: members,
        first_keys,
        max_issues,
    };
    let p = path.clone();
    // A reader bug must show up as a finding for this shard, not end the whole lint run.
    let rep = match crate::errors::release(py, move || scan(&p, &opts)) {
        Ok(r) => r,
        Err(
            e @ Error {
                kind: ErrorKind::Io(_),
                ..
            },
        ) => {
            let url = path.to_string_lossy();
            let ctx = ShardContext {
                path: Some(&path),
                ..ShardContext::new(&url)
            };
            return Err(to_pyerr(py, e, &ctx));
        }
        // Opening found damage before any header (e.g. unsupported compression): a finding.
        Err(e) => {
            let mut r = Report {
                compression: "unknown",
                ..Report::default()
            };
            r.push(usize::MAX, reader_issue(e));
            r
        }
    };
    let d = PyDict::new(py);
    d.set_item("compression", rep.compression)?;
    d.set_item("file_size", rep.file_size)?;
    d.set_item("tar_bytes", rep.tar_bytes)?;
    d.set_item("members", rep.members)?;
    d.set_item("samples", rep.samples)?;
    d.set_item("skipped", rep.skipped)?;
    let exts = PyDict::new(py);
    for (name, s) in &rep.exts {
        exts.set_item(name, (s.count, s.bytes, s.min, s.max))?;
    }
    d.set_item("extensions", exts)?;
    d.set_item("first_keys", &rep.first_keys)?;
    let issues = PyList::empty(py);
    for i in &rep.issues {
        let level = match i.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        issues.append((level, i.code, &i.message, &i.member, i.offset))?;
    }
    d.set_item("issues", issues)?;
    let suppressed = PyDict::new(py);
    for (code, n) in &rep.suppressed {
        suppressed.set_item(*code, *n)?;
    }
    d.set_item("suppressed", suppressed)?;
    if members {
        d.set_item("member_list", &rep.member_list)?;
    }
    Ok(d.unbind())
}
