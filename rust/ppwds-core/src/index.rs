//! Random access to the samples of one uncompressed tar shard (the `ppwids` side).
//!
//! [`ShardIndex::open`] maps the shard and walks its headers once, recording for every
//! member its name, data offset and size, and grouping members into samples the way
//! wids does. Reads are then plain slices of the mapping.
//!
//! The header walk ([`walk`]) decodes blocks in place in the mapping with the same
//! header functions and entry rules as [`crate::tar::TarReader`] (ustar prefixes, GNU
//! long names, pax paths, checksums, sparse refusal, the same errors at the same
//! offsets; a test checks the two agree), but without copying blocks or member data.
//! Every member keeps its own offset, so a duplicate member name can never shift the
//! data returned for later members.
//!
//! An optional sidecar file (our own small binary format, see [`IndexData::encode`])
//! stores the index so the next open skips the walk. It is used only when the shard's
//! size and modification time still match and its checksum is intact; otherwise it is
//! rebuilt.
//!
//! # Truncation hazard
//!
//! The shard is memory-mapped. If another process truncates or rewrites the file while
//! it is mapped, reading the vanished part raises `SIGBUS` and kills the process; no
//! check here can prevent that. Shards must be treated as immutable while open (write
//! new files and rename them into place instead of rewriting in place).

use std::fs::{self, File};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use memmap2::Mmap;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::is_meta;
use crate::source::Compression;
use crate::tar::{Entry, TarReader};

/// Splits a member name into key and extension the way wids does.
///
/// wids uses the regex `^((?:.*/)?.*?)(\..*)$`: the key runs up to the first dot of the
/// basename and the extension keeps that dot. When the basename has no dot, the regex
/// backtracks into the directories, so `a.b/c` gives key `a` and extension `.b/c`
/// (webdataset drops such a member). Names without any dot are skipped.
///
/// Returns the key length; the extension is the rest of the name, starting with the dot.
pub fn wids_split(name: &[u8]) -> Option<usize> {
    // Usual case: a dot in the basename. Here wids and webdataset's `split_key` agree
    // (a property test checks it); only the fallback below is wids-specific.
    let base = name.iter().rposition(|&b| b == b'/').map_or(0, |p| p + 1);
    if let Some(dot) = name[base..].iter().position(|&b| b == b'.') {
        return Some(base + dot);
    }
    // No dot in the basename: the regex backtracks to the longest directory prefix that
    // still has a dot after it, then takes the first dot after that prefix.
    let last_dot = name[..base].iter().rposition(|&b| b == b'.')?;
    let start = name[..last_dot]
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |p| p + 1);
    let dot = name[start..].iter().position(|&b| b == b'.')?;
    Some(start + dot)
}

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
/// This is [`TarReader`] over the mapped bytes: skipping member data is a cursor move,
/// so indexing costs one header decode per member, with the streaming reader's rules,
/// errors and offsets.
pub fn walk(data: &[u8], mut f: impl FnMut(WalkEntry) -> Result<()>) -> Result<()> {
    let len = data.len() as u64;
    let mut reader = TarReader::new(Cursor::new(data));
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
        f(entry)?;
    }
    Ok(())
}

impl IndexData {
    /// Indexes a whole uncompressed tar held in memory.
    pub fn build(data: &[u8]) -> Result<IndexData> {
        match Compression::detect(data) {
            Compression::None => {}
            other => {
                return Err(Error::new(
                    ErrorKind::Unsupported(format!(
                        "{other:?}-compressed shards cannot be indexed for random access; decompress them first"
                    )),
                    0,
                ))
            }
        }
        let mut out = IndexData {
            names: Vec::new(),
            members: Vec::new(),
            samples: Vec::new(),
            skipped: 0,
        };
        let mut last_key: Option<(u64, u32)> = None;
        walk(data, |entry| {
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
        Ok(out)
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

/// A memory-mapped shard and its index.
#[derive(Debug)]
pub struct ShardIndex {
    path: PathBuf,
    map: Mmap,
    data: IndexData,
    stamp: FileStamp,
    source: IndexSource,
    sidecar_error: Option<String>,
}

fn io_error(e: std::io::Error) -> Error {
    Error {
        kind: ErrorKind::Io(e),
        offset: None,
        member: None,
    }
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
        // SAFETY: the mapping is read-only and private to this index. The file must not be
        // truncated or rewritten while mapped (see the module docs): that would make reads
        // fault with SIGBUS. Every offset handed out is checked against the mapped length.
        let map = unsafe { Mmap::map(&file) }.map_err(io_error)?;
        if map.len() as u64 != stamp.size {
            return Err(invalid("the shard changed size while it was being opened"));
        }
        let mut sidecar_error = None;
        if let Some(side) = &opts.sidecar {
            match fs::read(side) {
                Ok(buf) => match IndexData::decode(&buf, &stamp) {
                    Ok(data) => {
                        return Ok(ShardIndex {
                            path: path.to_path_buf(),
                            map,
                            data,
                            stamp,
                            source: IndexSource::Sidecar,
                            sidecar_error: None,
                        })
                    }
                    Err(e) => sidecar_error = Some(format!("rebuilt index: {e}")),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => sidecar_error = Some(format!("cannot read index file: {e}")),
            }
        }
        let data = IndexData::build(&map)?;
        if let Some(side) = &opts.sidecar {
            if let Err(e) = write_atomic(side, &data.encode(&stamp)) {
                sidecar_error = Some(format!("cannot write index file {}: {e}", side.display()));
            }
        }
        Ok(ShardIndex {
            path: path.to_path_buf(),
            map,
            data,
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

    /// The whole mapped shard.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The data of one member (bounds were validated when the index was made).
    pub fn member_data(&self, m: &Member<'_>) -> &[u8] {
        let start = m.data_offset as usize;
        &self.map[start..start + m.size as usize]
    }
}
