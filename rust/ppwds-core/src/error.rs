//! One error type for every failure the core can report.
//!
//! Shard errors always carry the byte offset (in the decompressed tar stream)
//! and, when known, the member name, so the Python layer can add the shard URL
//! and produce a message that points at the exact place of the damage.

use std::fmt;
use std::io;

/// What went wrong, without the position.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The underlying source failed.
    Io(io::Error),
    /// The stream ended inside a header, inside member data, or before the end-of-archive marker.
    Truncated(String),
    /// A header block is malformed (bad checksum, bad number field, bad pax record).
    BadHeader(String),
    /// A valid tar feature this reader refuses to handle (e.g. sparse members).
    Unsupported(String),
    /// Two members of one sample share an extension.
    DuplicateMember {
        /// The sample key.
        key: String,
        /// The repeated extension.
        ext: String,
    },
    /// A compressed stream is corrupt.
    Decompress(String),
    /// Anything else (index/format level problems).
    Invalid(String),
}

/// An error with its location in a shard.
#[derive(Debug)]
pub struct Error {
    /// What happened.
    pub kind: ErrorKind,
    /// Byte offset of the header (or data) where it happened, if known.
    pub offset: Option<u64>,
    /// Name of the member involved, if known.
    pub member: Option<String>,
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A new error at `offset`.
    pub fn new(kind: ErrorKind, offset: u64) -> Self {
        Error {
            kind,
            offset: Some(offset),
            member: None,
        }
    }

    /// The same error, naming the member it happened in.
    pub fn with_member(mut self, member: &[u8]) -> Self {
        self.member = Some(String::from_utf8_lossy(member).into_owned());
        self
    }

    /// An I/O error at `offset`.
    pub fn io(err: io::Error, offset: u64) -> Self {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            return Error::new(
                ErrorKind::Truncated("unexpected end of data".into()),
                offset,
            );
        }
        if err.kind() == io::ErrorKind::InvalidData {
            return Error::new(ErrorKind::Decompress(err.to_string()), offset);
        }
        Error::new(ErrorKind::Io(err), offset)
    }

    /// A stable short name for the kind, used to pick the Python exception class.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::Io(_) => "io",
            ErrorKind::Truncated(_) => "truncated",
            ErrorKind::BadHeader(_) => "header",
            ErrorKind::Unsupported(_) => "unsupported",
            ErrorKind::DuplicateMember { .. } => "duplicate",
            ErrorKind::Decompress(_) => "decompress",
            ErrorKind::Invalid(_) => "invalid",
        }
    }

    /// The description without the location.
    pub fn reason(&self) -> String {
        match &self.kind {
            ErrorKind::Io(e) => format!("I/O error: {e}"),
            ErrorKind::Truncated(s) => format!("truncated shard: {s}"),
            ErrorKind::BadHeader(s) => format!("corrupt tar header: {s}"),
            ErrorKind::Unsupported(s) => format!("unsupported tar member: {s}"),
            ErrorKind::DuplicateMember { key, ext } => {
                format!(
                    "duplicate file name in tar file: sample {key:?} already has extension {ext:?}"
                )
            }
            ErrorKind::Decompress(s) => format!("corrupt compressed stream: {s}"),
            ErrorKind::Invalid(s) => s.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())?;
        if let Some(m) = &self.member {
            write!(f, ", member {m:?}")?;
        }
        if let Some(o) = self.offset {
            write!(f, ", byte offset {o}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}
