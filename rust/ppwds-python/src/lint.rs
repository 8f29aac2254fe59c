//! `scan_shard`: one pass over a local shard for `ppwebdataset lint` / `inspect`.
//!
//! Built on the core's public `TarReader`, so every check the reader gains shows up here.
//! Payloads are skipped, never copied into Python; only names, sizes and findings cross
//! the boundary, so a plain tar is checked at the speed its bytes can be read.

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

/// The current sample while members arrive: its key and extension ids.
struct Current {
    key: Vec<u8>,
    exts: Vec<u32>,
    offset: u64,
}

fn scan(path: &std::path::Path, opts: &Options) -> Result<Report, Error> {
    let file_size = std::fs::metadata(path)
        .map_err(|e| Error::new(ErrorKind::Io(e), 0))?
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
    let mut ext_ids: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut ext_names: Vec<Vec<u8>> = Vec::new();
    let mut stats: Vec<ExtStats> = Vec::new();
    // Per finished sample: its key and the extension ids it has (for the missing-field check).
    let mut sample_exts: Vec<Vec<u32>> = Vec::new();
    let mut sample_keys: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut seen_keys: HashSet<Vec<u8>> = HashSet::new();
    let mut current: Option<Current> = None;
    let mut reached_end = false;

    let mut finish = |cur: Current,
                      rep: &mut Report,
                      sample_exts: &mut Vec<Vec<u32>>,
                      sample_keys: &mut Vec<(Vec<u8>, u64)>| {
        if !seen_keys.insert(cur.key.clone()) {
            rep.push(
                max,
                Issue {
                    level: Level::Warning,
                    code: "split-sample",
                    message: format!(
                        "key {:?} appears again after other samples: its members form two samples",
                        lossy(&cur.key)
                    ),
                    member: None,
                    offset: Some(cur.offset),
                },
            );
        }
        if rep.first_keys.len() < opts.first_keys {
            rep.first_keys.push(lossy(&cur.key));
        }
        rep.samples += 1;
        sample_exts.push(cur.exts);
        sample_keys.push((cur.key, cur.offset));
    };

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
                    let id = match ext_ids.get(ext) {
                        Some(&id) => id,
                        None => {
                            let id = ext_names.len() as u32;
                            ext_ids.insert(ext.to_vec(), id);
                            ext_names.push(ext.to_vec());
                            stats.push(ExtStats {
                                min: u64::MAX,
                                ..ExtStats::default()
                            });
                            id
                        }
                    };
                    let st = &mut stats[id as usize];
                    st.count += 1;
                    st.bytes += entry.size;
                    st.min = st.min.min(entry.size);
                    st.max = st.max.max(entry.size);
                    let same = matches!(&current, Some(c) if c.key == key);
                    if same {
                        let cur = current.as_mut().expect("checked above");
                        if cur.exts.contains(&id) {
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
                        } else {
                            cur.exts.push(id);
                        }
                    } else {
                        if let Some(done) = current.take() {
                            finish(done, &mut rep, &mut sample_exts, &mut sample_keys);
                        }
                        current = Some(Current {
                            key: key.to_vec(),
                            exts: vec![id],
                            offset: entry.header_offset,
                        });
                    }
                }
            }
        }
        if let Some(done) = current.take() {
            finish(done, &mut rep, &mut sample_exts, &mut sample_keys);
        }
        rep.tar_bytes = reader.position();
    }

    if reached_end {
        check_after_end(&mut stream, rep.tar_bytes, &mut rep);
    }

    // Extensions: odd spellings, dotted ones that vary per sample, and fields most samples have.
    let nsamples = sample_exts.len() as u64;
    for (id, name) in ext_names.iter().enumerate() {
        let st = &stats[id];
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
        let mut per_sample = vec![0u64; ext_names.len()];
        for exts in &sample_exts {
            for &id in exts {
                per_sample[id as usize] += 1;
            }
        }
        for (id, &have) in per_sample.iter().enumerate() {
            if have * 2 > nsamples && have < nsamples {
                let missing: Vec<usize> = sample_exts
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| !e.contains(&(id as u32)))
                    .map(|(i, _)| i)
                    .collect();
                let examples: Vec<String> = missing
                    .iter()
                    .take(3)
                    .map(|&i| format!("{:?}", lossy(&sample_keys[i].0)))
                    .collect();
                rep.push(
                    max,
                    Issue {
                        level: Level::Warning,
                        code: "missing-field",
                        message: format!(
                            "{} of {nsamples} samples lack {:?}, which the others have (e.g. {})",
                            missing.len(),
                            lossy(&ext_names[id]),
                            examples.join(", ")
                        ),
                        member: None,
                        offset: Some(sample_keys[missing[0]].1),
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
    rep.exts = ext_names
        .into_iter()
        .zip(stats)
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
pub fn scan_shard(
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
    let scanned = py.detach(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scan(&p, &opts))).unwrap_or_else(
            |panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(Error::new(
                    ErrorKind::Invalid(format!("internal reader error (please report): {what}")),
                    0,
                ))
            },
        )
    });
    let rep = match scanned {
        Ok(r) => r,
        Err(Error {
            kind: ErrorKind::Io(io),
            ..
        }) => {
            let args = (
                io.raw_os_error().unwrap_or(0),
                io.to_string(),
                path.to_string_lossy().into_owned(),
            );
            return Err(pyo3::exceptions::PyOSError::new_err(args));
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
