//! Opening byte sources and undoing whole-archive compression.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

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

/// A read buffer that can look a few bytes ahead across refills (for member boundaries).
struct PeekBuf {
    inner: DynRead,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl PeekBuf {
    fn new(inner: DynRead) -> Self {
        PeekBuf {
            inner,
            buf: vec![0; BUFFER_SIZE],
            pos: 0,
            end: 0,
        }
    }

    /// Up to `n` upcoming bytes (fewer only at the end of input), without consuming them.
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.pos < n {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            while self.end < n {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(0) => break,
                    Ok(k) => self.end += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.end.min(self.pos + n)])
    }
}

/// `Read::read` for a type whose buffering is its `BufRead` implementation.
pub(crate) fn read_through_buf<B: BufRead>(src: &mut B, out: &mut [u8]) -> io::Result<usize> {
    let avail = src.fill_buf()?;
    let n = avail.len().min(out.len());
    out[..n].copy_from_slice(&avail[..n]);
    src.consume(n);
    Ok(n)
}

impl Read for PeekBuf {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_through_buf(self, out)
    }
}

impl BufRead for PeekBuf {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }
}

/// One member (gzip) or stream (bzip2) of a compressed file.
enum Member {
    Gzip(Box<flate2::bufread::GzDecoder<PeekBuf>>),
    Bzip2(bzip2::bufread::BzDecoder<PeekBuf>),
}

/// Decodes every member of a gzip / bzip2 file, to the end of its input.
///
/// Each member's trailer is checked by the decoder (gzip: CRC-32 and length; bzip2:
/// block and stream CRCs). Between and after members the rules of the command-line
/// tools and Python's modules apply: gzip skips zero padding and refuses anything else
/// that is not a gzip member (Python's `gzip`, and `tar -xzf` fails); bzip2 ignores
/// trailing bytes that do not start a bzip2 stream (`bzip2 -d`, Python's `bz2`).
struct MultiMember {
    member: Option<Member>,
    /// The input between members (`None` once the input is finished).
    between: Option<PeekBuf>,
    gzip: bool,
}

impl MultiMember {
    fn new(gzip: bool, src: PeekBuf) -> Self {
        MultiMember {
            member: Some(Self::start(gzip, src)),
            between: None,
            gzip,
        }
    }

    fn start(gzip: bool, src: PeekBuf) -> Member {
        if gzip {
            Member::Gzip(Box::new(flate2::bufread::GzDecoder::new(src)))
        } else {
            Member::Bzip2(bzip2::bufread::BzDecoder::new(src))
        }
    }

    /// True when another member starts at the current input position.
    fn next_member(&mut self) -> io::Result<bool> {
        let Some(src) = self.between.as_mut() else {
            return Ok(false);
        };
        if self.gzip {
            // Zero padding after a member is allowed (gzip and Python skip it).
            loop {
                let buf = src.fill_buf()?;
                if buf.is_empty() {
                    return Ok(false);
                }
                let zeros = buf.iter().take_while(|&&b| b == 0).count();
                if zeros == 0 {
                    break;
                }
                src.consume(zeros);
            }
            if src.peek(2)? == [0x1f, 0x8b] {
                return Ok(true);
            }
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "trailing garbage after the gzip stream (neither a gzip member nor zero padding)",
            ))
        } else {
            let head = src.peek(4)?;
            Ok(head.len() == 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]))
        }
    }
}

impl Read for MultiMember {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(member) = self.member.as_mut() {
                let n = match member {
                    Member::Gzip(d) => d.read(buf)?,
                    Member::Bzip2(d) => d.read(buf)?,
                };
                if n > 0 {
                    return Ok(n);
                }
                // The member ended and its trailer checked out.
                self.between = match self.member.take() {
                    Some(Member::Gzip(d)) => Some((*d).into_inner()),
                    Some(Member::Bzip2(d)) => Some(d.into_inner()),
                    None => None,
                };
            }
            if !self.next_member()? {
                self.between = None;
                return Ok(0);
            }
            if let Some(src) = self.between.take() {
                self.member = Some(Self::start(self.gzip, src));
            }
        }
    }
}

/// A decompressor supplied by the caller for formats the core does not decode itself (xz):
/// `Ok(None)` when it has none, an error (e.g. [`ErrorKind::External`]) when starting it failed.
pub type ExtraDecoder<'a> = &'a dyn Fn(Compression, DynRead) -> Result<Option<DynRead>>;

/// Wraps a raw source: peeks the magic bytes and inserts a decompressor when needed.
pub fn tar_stream(raw: DynRead) -> Result<(TarStream, Compression)> {
    tar_stream_with(raw, &|_, _| Ok(None))
}

/// Like [`tar_stream`], asking `extra` for decoders of formats not built in.
pub fn tar_stream_with(
    mut raw: DynRead,
    extra: ExtraDecoder<'_>,
) -> Result<(TarStream, Compression)> {
    let mut head = [0u8; 6];
    // Somewhere in the first bytes: no exact position to report.
    let n = read_up_to(&mut raw, &mut head).map_err(Error::from)?;
    let compression = Compression::detect(&head[..n]);
    let rejoined: DynRead = Box::new(Cursor::new(head[..n].to_vec()).chain(raw));
    let inner: DynRead = match compression {
        Compression::None => rejoined,
        Compression::Gzip | Compression::Bzip2 => Box::new(Decompressed {
            inner: MultiMember::new(compression == Compression::Gzip, PeekBuf::new(rejoined)),
        }),
        Compression::Xz => match extra(Compression::Xz, rejoined)? {
            Some(decoder) => Box::new(Decompressed { inner: decoder }),
            None => {
                return Err(ErrorKind::Unsupported(
                    "xz-compressed shard (no xz decoder available)".into(),
                )
                .into())
            }
        },
    };
    Ok((BufReader::with_capacity(BUFFER_SIZE, inner), compression))
}

/// Opens a local file as a tar stream.
pub fn open_path(path: &Path) -> Result<(TarStream, Compression)> {
    let file = File::open(path).map_err(|e| Error::from(ErrorKind::Io(e)))?;
    tar_stream(Box::new(file))
}
