//! Samples → tar members: the layout every shard writer produces.
//!
//! A sample is a key and `(field, bytes)` pairs. [`ShardEncoder`] owns the rules
//! that turn it into members: `_`-prefixed metadata fields are dropped unless
//! kept, each field becomes `key.field`, fields are written in byte order of
//! their names, `*.gz` fields are gzip-compressed, and the archive ends with the
//! end marker padded to a full record. The caller only turns its values into
//! bytes. Output goes to any [`Write`], in large chunks.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::tar::header::BLOCK;
use crate::tar::writer::{
    append_padding, check_name, end_of_archive_len, gzip_bytes, HeaderTemplate, MemberMeta,
};

/// The field name that holds the sample key; it is never written as a member.
pub const KEY_FIELD: &[u8] = b"__key__";

/// Payloads at least this large go to the output as they are, not through the buffer.
const DIRECT_WRITE: usize = 1 << 20;

/// What a sample field is, decided by its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// `__key__`: the sample key.
    Key,
    /// Any other name starting with `_` (`__url__`, `_meta`...): written only with `keep_meta`.
    Meta,
    /// A member of the sample.
    Data,
}

/// Classifies a sample field by its name.
pub fn field_kind(name: &[u8]) -> FieldKind {
    if name == KEY_FIELD {
        FieldKind::Key
    } else if name.first() == Some(&b'_') {
        FieldKind::Meta
    } else {
        FieldKind::Data
    }
}

/// The name without `.gz` when a data field is stored gzip-compressed (`txt.gz` → `txt`).
pub fn gzip_base(field: &[u8]) -> Option<&[u8]> {
    field.strip_suffix(b".gz")
}

/// Compresses the data of a `*.gz` field.
pub type GzipFn = Box<dyn FnMut(&[u8]) -> io::Result<Vec<u8>> + Send + Sync>;

/// Settings of a [`ShardEncoder`].
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    /// Permission bits of every member.
    pub mode: u32,
    /// Owner user name.
    pub uname: String,
    /// Owner group name.
    pub gname: String,
    /// Modification time of every member; `None` stamps each sample with the time it is written.
    pub mtime: Option<u64>,
    /// Write metadata fields (other than the key) as members too.
    pub keep_meta: bool,
    /// Compress `*.gz` data fields (off when the values arrive already encoded).
    pub gzip_fields: bool,
    /// Buffered output is written once it reaches this many bytes.
    pub buffer_size: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        let meta = MemberMeta::default();
        EncoderOptions {
            mode: meta.mode,
            uname: meta.uname,
            gname: meta.gname,
            mtime: None,
            keep_meta: false,
            gzip_fields: true,
            buffer_size: 1 << 20,
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn invalid(msg: impl Into<String>, offset: u64) -> Error {
    Error::new(ErrorKind::Invalid(msg.into()), offset)
}

/// Writes samples as the members of one tar archive.
pub struct ShardEncoder<W: Write> {
    out: W,
    template: HeaderTemplate,
    fixed_mtime: bool,
    keep_meta: bool,
    gzip: Option<GzipFn>,
    buf: Vec<u8>,
    flush_at: usize,
    name: Vec<u8>,
    /// Bytes handed to `out`.
    flushed: u64,
    /// Bytes of the archive so far, buffered ones included.
    written: u64,
    finished: bool,
}

impl<W: Write> ShardEncoder<W> {
    /// An encoder writing to `out`. `*.gz` fields are compressed like Python's
    /// `gzip.compress(data, mtime=0)` at its default level; see [`ShardEncoder::set_gzip`].
    pub fn new(out: W, options: EncoderOptions) -> Result<Self> {
        let meta = MemberMeta {
            mode: options.mode,
            uname: options.uname,
            gname: options.gname,
            mtime: options.mtime.unwrap_or_else(now),
            ..MemberMeta::default()
        };
        let template = HeaderTemplate::new(&meta).map_err(|e| e.at(0))?;
        let gzip: Option<GzipFn> = if options.gzip_fields {
            Some(Box::new(|data: &[u8]| Ok(gzip_bytes(data, 0))))
        } else {
            None
        };
        Ok(ShardEncoder {
            out,
            template,
            fixed_mtime: options.mtime.is_some(),
            keep_meta: options.keep_meta,
            gzip,
            buf: Vec::with_capacity(options.buffer_size.min(64 << 20) + 4 * BLOCK),
            flush_at: options.buffer_size.max(BLOCK),
            name: Vec::new(),
            flushed: 0,
            written: 0,
            finished: false,
        })
    }

    /// Replaces the compressor of `*.gz` fields (when they are compressed at all),
    /// e.g. with the host language's own so the bytes match it exactly.
    pub fn set_gzip(&mut self, gzip: GzipFn) {
        if self.gzip.is_some() {
            self.gzip = Some(gzip);
        }
    }

    /// True when a field of this kind becomes a member; callers may skip converting the others.
    pub fn writes(&self, kind: FieldKind) -> bool {
        match kind {
            FieldKind::Key => false,
            FieldKind::Meta => self.keep_meta,
            FieldKind::Data => true,
        }
    }

    /// True when `*.gz` data fields are compressed.
    pub fn gzips_fields(&self) -> bool {
        self.gzip.is_some()
    }

    /// Bytes of the archive so far (written or buffered).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// True after [`ShardEncoder::finish`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.out.write_all(&self.buf);
        // Whatever the stream took is gone from the buffer either way, as a failed write
        // leaves an archive that is cut anyway.
        let n = self.buf.len() as u64;
        self.buf.clear();
        result.map_err(|e| Error::new(ErrorKind::Io(e), self.flushed))?;
        self.flushed += n;
        Ok(())
    }

    fn write_direct(&mut self, data: &[u8]) -> Result<()> {
        self.flush_buf()?;
        self.out
            .write_all(data)
            .map_err(|e| Error::new(ErrorKind::Io(e), self.flushed))?;
        self.flushed += data.len() as u64;
        Ok(())
    }

    /// Appends one member under its full name, no field rules applied.
    fn append_member(&mut self, data: &[u8]) -> Result<()> {
        let start = self.buf.len();
        self.template
            .append_header(&mut self.buf, &self.name, data.len() as u64);
        let header_len = self.buf.len() - start;
        if data.len() >= DIRECT_WRITE {
            self.write_direct(data)?;
        } else {
            self.buf.extend_from_slice(data);
        }
        append_padding(&mut self.buf, data.len() as u64);
        self.written += (header_len + data.len().next_multiple_of(BLOCK)) as u64;
        Ok(())
    }

    fn start_sample(&mut self) -> Result<()> {
        if self.finished {
            return Err(invalid("write to a finished tar archive", self.written));
        }
        if !self.fixed_mtime {
            self.template
                .set_mtime(now())
                .map_err(|e| e.at(self.written))?;
        }
        Ok(())
    }

    /// Writes one sample; returns the number of payload bytes written (after compression).
    ///
    /// `fields` are `(name, bytes)` pairs as the sample holds them, metadata included
    /// (`__key__` is the `key` argument, not a field). Either every member is written
    /// or, when a name cannot be stored or a field cannot be compressed, none: only a
    /// failing output leaves part of a sample behind.
    pub fn write_sample(&mut self, key: &[u8], fields: &[(&[u8], &[u8])]) -> Result<u64> {
        self.start_sample()?;
        let mut members: Vec<(&[u8], Cow<'_, [u8]>)> = Vec::with_capacity(fields.len());
        for &(field, data) in fields {
            let kind = field_kind(field);
            if kind == FieldKind::Key {
                return Err(invalid(
                    "__key__ is the sample key, not a field",
                    self.written,
                ));
            }
            if !self.writes(kind) {
                continue;
            }
            let name_ok = !key.contains(&0) && !field.contains(&0);
            if !name_ok {
                let name = [key, b".", field].concat();
                check_name(&name).map_err(|e| e.at(self.written))?;
            }
            members.push((field, Cow::Borrowed(data)));
        }
        // Byte order of the names is the order of the str keys of a Python dict.
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(gzip) = self.gzip.as_mut() {
            for (field, data) in &mut members {
                if field_kind(field) == FieldKind::Data && gzip_base(field).is_some() {
                    let packed =
                        gzip(data).map_err(|e| Error::new(ErrorKind::Io(e), self.written))?;
                    *data = Cow::Owned(packed);
                }
            }
        }
        let mut total = 0u64;
        for (field, data) in &members {
            self.name.clear();
            self.name.extend_from_slice(key);
            self.name.push(b'.');
            self.name.extend_from_slice(field);
            self.append_member(data)?;
            total += data.len() as u64;
        }
        if self.buf.len() >= self.flush_at {
            self.flush_buf()?;
        }
        Ok(total)
    }

    /// Writes one member under its full `name`, outside any sample (for tools and tests
    /// that build arbitrary archives).
    pub fn write_member(&mut self, name: &[u8], data: &[u8]) -> Result<()> {
        self.start_sample()?;
        check_name(name).map_err(|e| e.at(self.written))?;
        self.name.clear();
        self.name.extend_from_slice(name);
        self.append_member(data)?;
        if self.buf.len() >= self.flush_at {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Writes out buffered members and flushes the output.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_buf()?;
        self.out
            .flush()
            .map_err(|e| Error::new(ErrorKind::Io(e), self.flushed))
    }

    /// Writes buffered members and the end-of-archive marker; later writes fail.
    /// A second call does nothing.
    pub fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let end = end_of_archive_len(self.written);
        self.buf.resize(self.buf.len() + end as usize, 0);
        self.written += end;
        self.flush()
    }

    /// Finishes the archive and returns the output.
    pub fn into_inner(mut self) -> Result<W> {
        self.finish()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_kinds() {
        assert_eq!(field_kind(b"__key__"), FieldKind::Key);
        assert_eq!(field_kind(b"__url__"), FieldKind::Meta);
        assert_eq!(field_kind(b"_x"), FieldKind::Meta);
        assert_eq!(field_kind(b"txt"), FieldKind::Data);
        assert_eq!(field_kind(b"a_"), FieldKind::Data);
        assert_eq!(field_kind(b""), FieldKind::Data);
        assert_eq!(gzip_base(b"json.gz"), Some(&b"json"[..]));
        assert_eq!(gzip_base(b"gz"), None);
    }
}
