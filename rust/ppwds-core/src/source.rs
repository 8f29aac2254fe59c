//! Opening byte sources and undoing whole-archive compression.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, ErrorKind, Result};

/// Read buffer size: large enough that syscalls are rare for tiny members, small enough
/// that a big member is mostly read straight into its final buffer, not copied twice.
pub const BUFFER_SIZE: usize = 256 << 10;

/// The compression detected from a stream's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`.tgz`, `.tar.gz`).
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz / lzma: detected but not decoded here.
    Xz,
}

impl Compression {
    /// Detects compression from magic bytes.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
}

/// A boxed source that can be sent to another thread.
pub type DynRead = Box<dyn Read + Send>;

/// A buffered, decompressed tar stream.
pub type TarStream = BufReader<DynRead>;

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Maps decompressor errors (reported as `InvalidInput`/`InvalidData`) to a clear kind.
struct Decompressed<R> {
    inner: R,
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt compressed data: {e}"),
            ),
            _ => e,
        })
    }
}

/// A decompressor supplied by the caller for formats the core does not decode itself (xz).
pub type ExtraDecoder<'a> = &'a dyn Fn(Compression, DynRead) -> Option<DynRead>;

/// Wraps a raw source: peeks the magic bytes and inserts a decompressor when needed.
pub fn tar_stream(raw: DynRead) -> Result<(TarStream, Compression)> {
    tar_stream_with(raw, &|_, _| None)
}

/// Like [`tar_stream`], asking `extra` for decoders of formats not built in.
pub fn tar_stream_with(
    mut raw: DynRead,
    extra: ExtraDecoder<'_>,
) -> Result<(TarStream, Compression)> {
    let mut head = [0u8; 6];
    let n = read_up_to(&mut raw, &mut head).map_err(|e| Error::io(e, 0))?;
    let compression = Compression::detect(&head[..n]);
    let rejoined: DynRead = Box::new(Cursor::new(head[..n].to_vec()).chain(raw));
    let inner: DynRead = match compression {
        Compression::None => rejoined,
        Compression::Gzip => Box::new(Decompressed {
            inner: MultiGzDecoder::new(BufReader::with_capacity(BUFFER_SIZE, rejoined)),
        }),
        Compression::Bzip2 => Box::new(Decompressed {
            inner: bzip2::read::MultiBzDecoder::new(BufReader::with_capacity(
                BUFFER_SIZE,
                rejoined,
            )),
        }),
        Compression::Xz => match extra(Compression::Xz, rejoined) {
            Some(decoder) => Box::new(Decompressed { inner: decoder }),
            None => {
                return Err(Error::new(
                    ErrorKind::Unsupported("xz-compressed shard (no xz decoder available)".into()),
                    0,
                ))
            }
        },
    };
    Ok((BufReader::with_capacity(BUFFER_SIZE, inner), compression))
}

/// Opens a local file as a tar stream.
pub fn open_path(path: &Path) -> Result<(TarStream, Compression)> {
    let file = File::open(path).map_err(|e| Error::new(ErrorKind::Io(e), 0))?;
    tar_stream(Box::new(file))
}
