//! One error type for every failure the core can report.
//!
//! Shard errors carry the byte offset (in the decompressed tar stream) where it is
//! known, never a made-up one, and the member name, so the Python layer can add the
//! shard URL and produce a message that points at the exact place of the damage.
//! Header parsing, image decoding and caller-supplied code report through it too.

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
    /// A value that cannot be stored in a tar header (writing).
    InvalidMember(String),
    /// An image could not be decoded or transformed.
    Image(String),
    /// An error from outside the core (a caller's name filter, stream or decoder hook):
    /// the caller gets its own error back by downcasting.
    External(Box<dyn std::error::Error + Send + Sync>),
    /// A bug caught at the boundary: the object that panicked is unusable.
    Panicked(String),
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

    /// The same error at `offset` (for errors built where the position is not known).
    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// The same error, naming the member it happened in.
    pub fn with_member(mut self, member: &[u8]) -> Self {
        self.member = Some(String::from_utf8_lossy(member).into_owned());
        self
    }

    /// An I/O error at `offset`: a cut stream is truncation, bad data a decoder error.
    pub fn io(err: io::Error, offset: u64) -> Self {
        Error::from(err).at(offset)
    }

    /// The panic payload of `std::panic::catch_unwind` as an error.
    pub fn panicked(payload: Box<dyn std::any::Any + Send>) -> Self {
        let msg = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(p) => match p.downcast::<&'static str>() {
                Ok(s) => (*s).to_string(),
                Err(_) => "unknown panic".to_string(),
            },
        };
        ErrorKind::Panicked(msg).into()
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
            ErrorKind::InvalidMember(_) => "invalid-member",
            ErrorKind::Image(_) => "image",
            ErrorKind::External(_) => "external",
            ErrorKind::Panicked(_) => "panic",
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
            ErrorKind::Invalid(s) | ErrorKind::InvalidMember(s) | ErrorKind::Image(s) => s.clone(),
            ErrorKind::External(e) => e.to_string(),
            ErrorKind::Panicked(s) => format!("internal error (please report it): {s}"),
        }
    }
}

/// An error whose position is not known.
impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error {
            kind,
            offset: None,
            member: None,
        }
    }
}

/// An I/O error at an unknown position.
impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        let kind = match err.kind() {
            io::ErrorKind::UnexpectedEof => ErrorKind::Truncated("unexpected end of data".into()),
            io::ErrorKind::InvalidData => ErrorKind::Decompress(err.to_string()),
            _ => ErrorKind::Io(err),
        };
        kind.into()
    }
}

/// For `Write`/`Read` adapters: an I/O error at no known place comes back as itself.
impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err {
            Error {
                kind: ErrorKind::Io(e),
                offset: None,
                member: None,
            } => e,
            err => {
                let kind = match &err.kind {
                    ErrorKind::Io(e) => e.kind(),
                    ErrorKind::Truncated(_) => io::ErrorKind::UnexpectedEof,
                    ErrorKind::InvalidMember(_) => io::ErrorKind::InvalidInput,
                    _ => io::ErrorKind::InvalidData,
                };
                io::Error::new(kind, err)
            }
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
            ErrorKind::External(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_kinds_without_a_made_up_offset() {
        let cut = Error::from(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(matches!(cut.kind, ErrorKind::Truncated(_)) && cut.offset.is_none());
        let bad = Error::io(io::Error::new(io::ErrorKind::InvalidData, "crc"), 7);
        assert!(matches!(bad.kind, ErrorKind::Decompress(_)) && bad.offset == Some(7));
        let gone = Error::from(io::Error::from(io::ErrorKind::NotFound));
        assert!(matches!(gone.kind, ErrorKind::Io(_)));
        assert!(!gone.to_string().contains("offset"));
    }

    #[test]
    fn external_errors_come_back_by_downcasting() {
        #[derive(Debug)]
        struct Mine;
        impl fmt::Display for Mine {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("mine")
            }
        }
        impl std::error::Error for Mine {}
        let err = Error::from(ErrorKind::External(Box::new(Mine))).with_member(b"a.txt");
        assert_eq!(err.to_string(), "mine, member \"a.txt\"");
        match err.kind {
            ErrorKind::External(e) => assert!(e.downcast::<Mine>().is_ok()),
            _ => unreachable!(),
        }
    }

    #[test]
    fn errors_become_io_errors_for_adapters() {
        let unfit = io::Error::from(Error::from(ErrorKind::InvalidMember("too long".into())));
        assert_eq!(
            (unfit.kind(), unfit.to_string()),
            (io::ErrorKind::InvalidInput, "too long".into())
        );
        let raw = io::Error::from(Error::from(io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(raw.get_ref().is_none() && raw.kind() == io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn panics_keep_their_message() {
        let err = Error::panicked(std::panic::catch_unwind(|| panic!("at {}", 3)).unwrap_err());
        assert!(matches!(&err.kind, ErrorKind::Panicked(m) if m == "at 3"));
    }
}
