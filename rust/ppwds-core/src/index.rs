//! Random access to the samples of one uncompressed tar shard (the `ppwids` side).
//!
//! [`ShardIndex::open`] walks the shard's headers once, recording for every member its
//! name, data offset and size, and grouping members into samples the way wids does.
//! Member data is then read with positioned reads (`pread`).
//!
//! The header walk ([`walk`]) uses [`crate::tar::TarReader`] itself, so it has the same
//! header functions and entry rules (ustar prefixes, GNU long names, pax paths,
//! checksums, sparse refusal, the same errors at the same offsets). On a file it reads
//! through a small window and never reads member data. Every member keeps its own
//! offset, so a duplicate member name can never shift the data returned for later
//! members; a sample that repeats an extension is refused when it is read
//! ([`ShardIndex::duplicate`]), as the streaming reader refuses it.
//!
//! An optional sidecar file (our own small binary format, see [`IndexData::encode`])
//! stores the index so the next open skips the walk. It is used only when the shard's
//! size and modification time still match and its checksum is intact; otherwise it is
//! rebuilt.
//!
//! # A shard that changes while open
//!
//! Nothing is memory-mapped: a shard truncated or rewritten under an open index gives a
//! [`ErrorKind::Truncated`] error naming the member and offset on the next read (bytes
//! rewritten in place at the same size cannot be detected), never a signal.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, BufRead, Cursor, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::is_meta;
pub use crate::keys::wids_split;
use crate::source::Compression;
use crate::tar::{Entry, TarReader};

/// One member of a sample, as stored in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRec {
    /// Offset of the first data byte in the shard.
    pub data_offset: u64,
    /// Data size in bytes.
    pub size: u64,
    /// Start of the full member name in [`IndexData::names`].
    pub name_start: u64,
    /// Length of the full member name.
    pub name_len: u32,
    /// Length of the key prefix of the name; the extension (with its dot) follows.
    pub key_len: u32,
}

/// What the index knows about the file it was built from, to detect a changed shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// File size in bytes.
    pub size: u64,
    /// Modification time, whole seconds since the Unix epoch.
    pub mtime_sec: i64,
    /// Nanosecond part of the modification time.
    pub mtime_nsec: u32,
}

impl FileStamp {
    /// The stamp of an open file.
    pub fn of(meta: &fs::Metadata) -> FileStamp {
        let (mtime_sec, mtime_nsec) = match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
            Ok(Ok(d)) => (d.as_secs() as i64, d.subsec_nanos()),
            Ok(Err(before)) => {
                let d = before.duration();
                (-(d.as_secs() as i64), d.subsec_nanos())
            }
            // No mtime on this platform: only the size can reveal a changed shard.
            Err(_) => (i64::MIN, 0),
        };
        FileStamp {
            size: meta.len(),
            mtime_sec,
            mtime_nsec,
        }
    }
}

/// The index of one shard, independent of the mapping (built, loaded and saved as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexData {
    /// All kept member names, back to back.
    pub names: Vec<u8>,
    /// Kept members in archive order.
    pub members: Vec<MemberRec>,
    /// `samples[i]..samples[i + 1]` are the members of sample `i`; one more entry than samples.
    pub samples: Vec<u64>,
    /// Regular members that joined no sample (no dot in the name, or metadata).
    pub skipped: u64,
}

/// One member of a sample, borrowed from the index.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// Full member name.
    pub name: &'a [u8],
    /// Extension with its leading dot (wids style: `.jpg`, `.seg.png`).
    pub ext: &'a [u8],
    /// Offset of the first data byte.
    pub data_offset: u64,
    /// Data size.
    pub size: u64,
}

const MAGIC: &[u8; 8] = b"PPWDSIX1";
const HEADER_LEN: usize = 72;
const MEMBER_LEN: usize = 32;

/// A 64-bit check value over 8-byte words (FNV-1a style); catches damage, not tampering.
fn checksum(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
            h ^= h >> 29;
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h = (h ^ part.len() as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn u64_at(buf: &[u8], pos: usize) -> u64 {
    u64::from_le_bytes(buf[pos..pos + 8].try_into().unwrap_or([0; 8]))
}

fn u32_at(buf: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap_or([0; 4]))
}

fn invalid(msg: impl Into<String>) -> Error {
    Error {
        kind: ErrorKind::Invalid(msg.into()),
        offset: None,
        member: None,
    }
}

/// A regular file found by [`walk`].
pub type WalkEntry = Entry;

/// Calls `f` for every regular file of the uncompressed tar `data`, in order.
///
/// This is [`TarReader`] over the bytes: skipping member data is a cursor move, so
/// indexing costs one header decode per member, with the streaming reader's rules,
/// errors and offsets.
pub fn walk(data: &[u8], f: impl FnMut(WalkEntry) -> Result<()>) -> Result<()> {
    walk_source(Cursor::new(data), data.len() as u64, |_| {}, f)
}

/// [`walk`] over any source of `len` bytes; `started` sees each entry before `f`, so
/// the source can learn which byte ranges are member data it need not read.
fn walk_source<R: BufRead>(
    src: R,
    len: u64,
    mut started: impl FnMut(&Entry),
    mut f: impl FnMut(WalkEntry) -> Result<()>,
) -> Result<()> {
    let mut reader = TarReader::new(src);
    while let Some(entry) = reader.next_entry()? {
        // Random access needs the data itself, so a cut member is refused before it is listed.
        let available = len.saturating_sub(entry.data_offset);
        if available < entry.size {
            let msg = format!(
                "member data cut short: expected {} bytes, got {available}",
                entry.size
            );
            return Err(
                Error::new(ErrorKind::Truncated(msg), entry.header_offset).with_member(&entry.name)
            );
        }
        started(&entry);
        f(entry)?;
    }
    Ok(())
}

/// Window of a header walk over a file.
const WALK_WINDOW: usize = 64 << 10;
/// Member data the walk skips is handed to the reader as zeros, this much at a time.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// A `BufRead` over a file by positioned reads, for the header walk: bytes inside the
/// current member's data range (`skip`) are never read, the reader gets zeros instead
/// (it only skips them). A file that shrinks ends early, so the walk reports it cut.
struct WalkSource<'a> {
    file: &'a File,
    pos: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    skip: Rc<Cell<(u64, u64)>>,
}

impl BufRead for WalkSource<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start < self.end {
            return Ok(&self.buf[self.start..self.end]);
        }
        let (lo, hi) = self.skip.get();
        if self.pos >= lo && self.pos < hi {
            let n = (hi - self.pos).min(ZEROS.len() as u64) as usize;
            return Ok(&ZEROS[..n]);
        }
        let n = loop {
            match self.file.read_at(&mut self.buf, self.pos) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.start = 0;
        self.end = n;
        Ok(&self.buf[..n])
    }

    fn consume(&mut self, amt: usize) {
        if self.start < self.end {
            self.start = (self.start + amt).min(self.end);
        }
        self.pos += amt as u64;
    }
}

impl Read for WalkSource<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        crate::source::read_through_buf(self, out)
    }
}

/// Reads `buf.len()` bytes at `offset` unless the file ends first; returns the count read.
fn read_full_at(file: &File, buf: &mut [u8], mut offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Largest stretch of a sample read with one call (members and the headers between them).
pub const SPAN_LIMIT: u64 = 1 << 20;

/// A sample that repeats an extension: the later member would silently replace the
/// earlier one in the sample dict, so reading the sample is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    /// The sample.
    pub sample: u64,
    /// Index (in [`IndexData::members`]) of the first member that repeats an extension.
    pub member: u64,
    /// Offset of that member's first header block, when known (not from a sidecar).
    pub header_offset: Option<u64>,
}

fn check_uncompressed(head: &[u8]) -> Result<()> {
    match Compression::detect(head) {
        Compression::None => Ok(()),
        // A property of the whole file, not of a position in it.
        other => Err(ErrorKind::Unsupported(format!(
            "{other:?}-compressed shards cannot be indexed for random access; decompress them first"
        ))
        .into()),
    }
}

impl IndexData {
    /// Indexes a whole uncompressed tar held in memory.
    pub fn build(data: &[u8]) -> Result<IndexData> {
        check_uncompressed(data)?;
        Ok(IndexData::build_from(|f| walk(data, f))?.0)
    }

    /// Indexes the entries a walk hands out; also lists the samples that repeat an
    /// extension, with the header offset of the repeating member.
    fn build_from(
        walker: impl FnOnce(&mut dyn FnMut(WalkEntry) -> Result<()>) -> Result<()>,
    ) -> Result<(IndexData, Vec<Duplicate>)> {
        let mut out = IndexData {
            names: Vec::new(),
            members: Vec::new(),
            samples: Vec::new(),
            skipped: 0,
        };
        let mut dups: Vec<Duplicate> = Vec::new();
        let mut last_key: Option<(u64, u32)> = None;
        walker(&mut |entry| {
            let name = entry.name;
            let key_len = match wids_split(&name) {
                Some(k) if !is_meta(&name) => k,
                _ => {
                    out.skipped += 1;
                    return Ok(());
                }
            };
            let (Ok(name_len), Ok(key_len)) = (u32::try_from(name.len()), u32::try_from(key_len))
            else {
                return Err(Error::new(
                    ErrorKind::BadHeader("member name too long".into()),
                    entry.header_offset,
                )
                .with_member(&name));
            };
            let name_start = out.names.len() as u64;
            let same_key = last_key.is_some_and(|(start, len)| {
                len == key_len
                    && out.names[start as usize..(start + u64::from(len)) as usize]
                        == name[..key_len as usize]
            });
            if !same_key {
                out.samples.push(out.members.len() as u64);
                last_key = Some((name_start, key_len));
            } else {
                let sample = out.samples.len() as u64 - 1;
                let first = out.samples[sample as usize] as usize;
                let ext = &name[key_len as usize..];
                let repeated = out.members[first..]
                    .iter()
                    .any(|m| out.name(m)[m.key_len as usize..] == *ext);
                if repeated && dups.last().is_none_or(|d| d.sample != sample) {
                    dups.push(Duplicate {
                        sample,
                        member: out.members.len() as u64,
                        header_offset: Some(entry.header_offset),
                    });
                }
            }
            out.names.extend_from_slice(&name);
            out.members.push(MemberRec {
                data_offset: entry.data_offset,
                size: entry.size,
                name_start,
                name_len,
                key_len,
            });
            Ok(())
        })?;
        out.samples.push(out.members.len() as u64);
        Ok((out, dups))
    }

    /// The samples that repeat an extension (header offsets unknown).
    pub fn duplicates(&self) -> Vec<Duplicate> {
        let mut out = Vec::new();
        for i in 0..self.len() {
            let lo = self.samples[i] as usize;
            let ms = self.sample_members(i);
            for (k, m) in ms.iter().enumerate().skip(1) {
                let ext = &self.name(m)[m.key_len as usize..];
                if ms[..k]
                    .iter()
                    .any(|p| &self.name(p)[p.key_len as usize..] == ext)
                {
                    out.push(Duplicate {
                        sample: i as u64,
                        member: (lo + k) as u64,
                        header_offset: None,
                    });
                    break;
                }
            }
        }
        out
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len().saturating_sub(1)
    }

    /// True when the shard has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn name(&self, m: &MemberRec) -> &[u8] {
        let start = m.name_start as usize;
        &self.names[start..start + m.name_len as usize]
    }

    /// Members of sample `i` (panics when out of range; check [`IndexData::len`]).
    pub fn sample_members(&self, i: usize) -> &[MemberRec] {
        let lo = self.samples[i] as usize;
        let hi = self.samples[i + 1] as usize;
        &self.members[lo..hi]
    }

    /// Key of sample `i`.
    pub fn key(&self, i: usize) -> &[u8] {
        match self.sample_members(i).first() {
            Some(m) => &self.name(m)[..m.key_len as usize],
            None => b"",
        }
    }

    /// Members of sample `i` with names and extensions resolved.
    pub fn members(&self, i: usize) -> impl Iterator<Item = Member<'_>> + '_ {
        self.sample_members(i).iter().map(move |m| {
            let name = self.name(m);
            Member {
                name,
                ext: &name[m.key_len as usize..],
                data_offset: m.data_offset,
                size: m.size,
            }
        })
    }

    /// Serialises the index with the stamp of the shard it describes.
    ///
    /// Layout (little-endian): magic `PPWDSIX1`; shard size u64; mtime seconds i64;
    /// mtime nanoseconds u32; 4 zero bytes; member count u64; sample count u64; names
    /// length u64; skipped count u64; checksum u64 (over everything else); then the
    /// members (data offset u64, size u64, name start u64, name length u32, key length
    /// u32), the sample starts (u64 each, one more than the sample count) and the names.
    pub fn encode(&self, stamp: &FileStamp) -> Vec<u8> {
        let body_len = self.members.len() * MEMBER_LEN + self.samples.len() * 8 + self.names.len();
        let mut out = Vec::with_capacity(HEADER_LEN + body_len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&stamp.size.to_le_bytes());
        out.extend_from_slice(&stamp.mtime_sec.to_le_bytes());
        out.extend_from_slice(&stamp.mtime_nsec.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&(self.members.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.names.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.skipped.to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        for m in &self.members {
            out.extend_from_slice(&m.data_offset.to_le_bytes());
            out.extend_from_slice(&m.size.to_le_bytes());
            out.extend_from_slice(&m.name_start.to_le_bytes());
            out.extend_from_slice(&m.name_len.to_le_bytes());
            out.extend_from_slice(&m.key_len.to_le_bytes());
        }
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out.extend_from_slice(&self.names);
        let sum = checksum(&[&out[..HEADER_LEN - 8], &out[HEADER_LEN..]]);
        out[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses a sidecar written by [`IndexData::encode`], checking it against `stamp`.
    ///
    /// Any mismatch (other shard version, damage, inconsistent offsets) is an error; the
    /// caller then rebuilds the index from the shard.
    pub fn decode(buf: &[u8], stamp: &FileStamp) -> Result<IndexData> {
        if buf.len() < HEADER_LEN || &buf[..8] != MAGIC {
            return Err(invalid("not a ppwids index file (bad magic or version)"));
        }
        let stored = FileStamp {
            size: u64_at(buf, 8),
            mtime_sec: u64_at(buf, 16) as i64,
            mtime_nsec: u32_at(buf, 24),
        };
        if stored != *stamp {
            return Err(invalid(
                "index is stale: the shard's size or modification time changed",
            ));
        }
        let n_members = u64_at(buf, 32);
        let n_samples = u64_at(buf, 40);
        let names_len = u64_at(buf, 48);
        let skipped = u64_at(buf, 56);
        let sum = u64_at(buf, 64);
        let expect = n_members
            .checked_mul(MEMBER_LEN as u64)
            .and_then(|a| n_samples.checked_add(1)?.checked_mul(8)?.checked_add(a))
            .and_then(|a| a.checked_add(names_len))
            .and_then(|a| a.checked_add(HEADER_LEN as u64));
        if expect != Some(buf.len() as u64) {
            return Err(invalid("index file has the wrong length"));
        }
        if checksum(&[&buf[..HEADER_LEN - 8], &buf[HEADER_LEN..]]) != sum {
            return Err(invalid("index file checksum mismatch"));
        }
        let n_members = n_members as usize;
        let n_samples = n_samples as usize;
        let mut pos = HEADER_LEN;
        let mut members = Vec::with_capacity(n_members);
        for _ in 0..n_members {
            members.push(MemberRec {
                data_offset: u64_at(buf, pos),
                size: u64_at(buf, pos + 8),
                name_start: u64_at(buf, pos + 16),
                name_len: u32_at(buf, pos + 24),
                key_len: u32_at(buf, pos + 28),
            });
            pos += MEMBER_LEN;
        }
        let mut samples = Vec::with_capacity(n_samples + 1);
        for _ in 0..=n_samples {
            samples.push(u64_at(buf, pos));
            pos += 8;
        }
        let data = IndexData {
            names: buf[pos..].to_vec(),
            members,
            samples,
            skipped,
        };
        data.validate(stamp.size)?;
        Ok(data)
    }

    /// Checks every invariant that reads rely on, so a bad index can never cause a panic
    /// or a read outside the shard.
    pub fn validate(&self, file_size: u64) -> Result<()> {
        let names_len = self.names.len() as u64;
        for m in &self.members {
            let name_end = m.name_start.checked_add(u64::from(m.name_len));
            let data_end = m.data_offset.checked_add(m.size);
            if name_end.is_none_or(|e| e > names_len)
                || m.key_len > m.name_len
                || data_end.is_none_or(|e| e > file_size)
            {
                return Err(invalid(
                    "index entry points outside the shard or name table",
                ));
            }
        }
        let n = self.members.len() as u64;
        if self.samples.first() != Some(&0)
            || self.samples.last() != Some(&n)
            || self.samples.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(invalid("index sample table is inconsistent"));
        }
        Ok(())
    }
}

/// Where an index came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexSource {
    /// Built by walking the shard's headers.
    Built,
    /// Loaded from a valid sidecar file.
    Sidecar,
}

/// Options for [`ShardIndex::open`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Sidecar index file to reuse when valid, and to (re)write otherwise.
    pub sidecar: Option<PathBuf>,
}

/// An open shard and its index.
#[derive(Debug)]
pub struct ShardIndex {
    path: PathBuf,
    file: File,
    data: IndexData,
    dups: Vec<Duplicate>,
    stamp: FileStamp,
    source: IndexSource,
    sidecar_error: Option<String>,
}

fn io_error(e: std::io::Error) -> Error {
    ErrorKind::Io(e).into()
}

/// Writes `bytes` to `path` through a unique temporary file and a rename, so readers
/// never see a half-written sidecar and concurrent writers do not clash.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}-{nanos}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl ShardIndex {
    /// Maps the shard at `path` and indexes it (or loads a matching sidecar).
    ///
    /// Errors name the member and byte offset of any damage; the caller adds the shard
    /// name. Failing to write the sidecar is not an error (see
    /// [`ShardIndex::sidecar_error`]).
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<ShardIndex> {
        let file = File::open(path).map_err(io_error)?;
        let meta = file.metadata().map_err(io_error)?;
        if !meta.is_file() {
            return Err(invalid("not a regular file"));
        }
        let stamp = FileStamp::of(&meta);
        if stamp.size == 0 {
            return Err(Error::new(
                ErrorKind::Truncated("empty file: no tar header".into()),
                0,
            ));
        }
        let mut sidecar_error = None;
        if let Some(side) = &opts.sidecar {
            match fs::read(side) {
                Ok(buf) => match IndexData::decode(&buf, &stamp) {
                    // A shard with repeated extensions is walked again, for the exact offsets.
                    Ok(data) if data.duplicates().is_empty() => {
                        return Ok(ShardIndex {
                            path: path.to_path_buf(),
                            file,
                            data,
                            dups: Vec::new(),
                            stamp,
                            source: IndexSource::Sidecar,
                            sidecar_error: None,
                        })
                    }
                    Ok(_) => {}
                    Err(e) => sidecar_error = Some(format!("rebuilt index: {e}")),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => sidecar_error = Some(format!("cannot read index file: {e}")),
            }
        }
        let mut head = [0u8; 6];
        let n = (stamp.size as usize).min(head.len());
        if read_full_at(&file, &mut head[..n], 0).map_err(io_error)? < n {
            return Err(invalid("the shard changed size while it was being opened"));
        }
        check_uncompressed(&head[..n])?;
        let skip = Rc::new(Cell::new((0u64, 0u64)));
        let src = WalkSource {
            file: &file,
            pos: 0,
            buf: vec![0; WALK_WINDOW],
            start: 0,
            end: 0,
            skip: skip.clone(),
        };
        let (data, dups) = IndexData::build_from(|f| {
            walk_source(
                src,
                stamp.size,
                |e| skip.set((e.data_offset, e.data_offset.saturating_add(e.size))),
                f,
            )
        })?;
        if let Some(side) = &opts.sidecar {
            if let Err(e) = write_atomic(side, &data.encode(&stamp)) {
                sidecar_error = Some(format!("cannot write index file {}: {e}", side.display()));
            }
        }
        Ok(ShardIndex {
            path: path.to_path_buf(),
            file,
            data,
            dups,
            stamp,
            source: IndexSource::Built,
            sidecar_error,
        })
    }

    /// The shard's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size and modification time of the shard when it was opened.
    pub fn stamp(&self) -> FileStamp {
        self.stamp
    }

    /// Whether the index was built or loaded from a sidecar.
    pub fn source(&self) -> IndexSource {
        self.source
    }

    /// Why the sidecar could not be used or written, if it could not.
    pub fn sidecar_error(&self) -> Option<&str> {
        self.sidecar_error.as_deref()
    }

    /// The index itself.
    pub fn data(&self) -> &IndexData {
        &self.data
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the shard has no samples.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The first repeated extension of sample `i`, if it has one.
    pub fn duplicate(&self, i: usize) -> Option<&Duplicate> {
        if self.dups.is_empty() {
            return None;
        }
        let pos = self
            .dups
            .binary_search_by_key(&(i as u64), |d| d.sample)
            .ok()?;
        self.dups.get(pos)
    }

    /// All samples that repeat an extension, in shard order.
    pub fn duplicates(&self) -> &[Duplicate] {
        &self.dups
    }

    /// The error for reading sample `i` when it repeats an extension (the rule of the
    /// streaming reader: [`ErrorKind::DuplicateMember`] at the repeating member).
    pub fn duplicate_error(&self, i: usize) -> Option<Error> {
        let d = self.duplicate(i)?;
        let m = self.data.members.get(d.member as usize)?;
        let name = self.data.name(m);
        let kind = ErrorKind::DuplicateMember {
            key: String::from_utf8_lossy(&name[..m.key_len as usize]).into_owned(),
            ext: String::from_utf8_lossy(&name[m.key_len as usize..]).into_owned(),
        };
        let err = Error {
            kind,
            offset: d.header_offset,
            member: None,
        };
        Some(err.with_member(name))
    }

    /// The error for member data that the file no longer holds.
    fn changed_error(&self, m: &Member<'_>) -> Error {
        let now = self.file.metadata().map(|md| md.len()).ok();
        let size = now.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        let msg = format!(
            "the shard changed on disk after it was indexed: member data needs bytes {}..{} but the file has {size} bytes",
            m.data_offset,
            m.data_offset.saturating_add(m.size),
        );
        Error::new(ErrorKind::Truncated(msg), m.data_offset).with_member(m.name)
    }

    /// Reads one member's data into `buf` (exactly `m.size` bytes long).
    ///
    /// A file that became shorter than the index says is a [`ErrorKind::Truncated`]
    /// error naming the member and its data offset.
    pub fn read_member_into(&self, m: &Member<'_>, buf: &mut [u8]) -> Result<()> {
        debug_assert_eq!(buf.len() as u64, m.size);
        match read_full_at(&self.file, buf, m.data_offset) {
            Ok(n) if n == buf.len() => Ok(()),
            Ok(_) => Err(self.changed_error(m)),
            Err(e) => Err(Error::io(e, m.data_offset).with_member(m.name)),
        }
    }

    /// Reads `buf.len()` bytes at `offset` with positioned reads (the file is never
    /// mapped); returns the count read, fewer only when the file now ends first.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        read_full_at(&self.file, buf, offset)
    }

    /// The data of one member as a new vector.
    pub fn read_member(&self, m: &Member<'_>) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; m.size as usize];
        self.read_member_into(m, &mut buf)?;
        Ok(buf)
    }

    /// Reads all members of sample `i` with one positioned read into `buf`, when they
    /// lie in order within [`SPAN_LIMIT`] bytes; returns the offset of `buf[0]`, or
    /// `None` (and reads nothing) when the sample must be read member by member.
    pub fn read_sample_span(&self, i: usize, buf: &mut Vec<u8>) -> Result<Option<u64>> {
        let ms = self.data.sample_members(i);
        let (Some(first), Some(last)) = (ms.first(), ms.last()) else {
            return Ok(None);
        };
        let lo = first.data_offset;
        let hi = last.data_offset.saturating_add(last.size);
        let ordered = ms
            .windows(2)
            .all(|w| w[0].data_offset + w[0].size <= w[1].data_offset);
        if !ordered || hi < lo || hi - lo > SPAN_LIMIT {
            return Ok(None);
        }
        buf.resize((hi - lo) as usize, 0);
        let got = read_full_at(&self.file, buf, lo).map_err(|e| {
            let m = self.data.members(i).next();
            let err = Error::io(e, lo);
            match m {
                Some(m) => err.with_member(m.name),
                None => err,
            }
        })?;
        if got < buf.len() {
            let end = lo + got as u64;
            if let Some(m) = self.data.members(i).find(|m| m.data_offset + m.size > end) {
                return Err(self.changed_error(&m));
            }
        }
        Ok(Some(lo))
    }
}
