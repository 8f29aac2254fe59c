//! A streaming tar reader that yields regular-file entries one at a time.
//!
//! It never seeks, so it works on pipes and decompressors, and it never
//! allocates more than the data actually present (sizes in headers are not
//! trusted for up-front allocation).

use std::io::{self, BufRead, Read};

use super::header::{
    padding, parse_block, parse_pax, Block, EntryType, PaxInfo, BLOCK, MAX_META_SIZE,
};
use crate::error::{Error, ErrorKind, Result};

/// Up-front allocation limit for member data; larger members grow as data arrives.
const PREALLOC_LIMIT: u64 = 64 << 20;

/// Largest member size accepted from a header: nothing real is near it, and every offset
/// and allocation size computed from it stays far from overflowing (`isize::MAX` too).
pub const MAX_MEMBER_SIZE: u64 = i64::MAX as u64 / 2;

/// How to treat what follows the end-of-archive marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Read past zero blocks like `tarfile`'s `ignore_zeros` (concatenated archives,
    /// `cat a.tar b.tar`): the archive then ends only at the end of the input.
    pub ignore_zeros: bool,
    /// After the end-of-archive marker, read the rest of the input and report a valid
    /// header found there as damage (a zero block in the middle of the shard). Zero
    /// padding and other bytes are accepted. Only sensible when the input is finite and
    /// read to its end anyway: files of known size, compressed streams (whose trailer
    /// must be read to check it) and in-memory data.
    pub check_after_end: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            ignore_zeros: false,
            check_after_end: true,
        }
    }
}

/// A regular file in the archive whose data is next in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full member name (ustar prefix, GNU long name or pax path applied).
    pub name: Vec<u8>,
    /// Data size in bytes.
    pub size: u64,
    /// Offset of the entry's first header block (including long-name / pax headers).
    pub header_offset: u64,
    /// Offset of the first data byte.
    pub data_offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Data { remaining: u64 },
    End,
    Failed,
}

/// Streaming reader over any buffered byte source.
pub struct TarReader<R: BufRead> {
    src: R,
    pos: u64,
    state: State,
    global: PaxInfo,
    /// Header offset of the entry whose data is pending (for error positions).
    current_offset: u64,
    opts: ReadOptions,
}

impl<R: BufRead> TarReader<R> {
    /// Wraps a source positioned at the start of a tar stream (default [`ReadOptions`]).
    pub fn new(src: R) -> Self {
        Self::with_options(src, ReadOptions::default())
    }

    /// Wraps a source positioned at the start of a tar stream.
    pub fn with_options(src: R, opts: ReadOptions) -> Self {
        TarReader {
            src,
            pos: 0,
            state: State::Header,
            global: PaxInfo::default(),
            current_offset: 0,
            opts,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// True once the end-of-archive marker was read or an error ended the stream.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::End | State::Failed)
    }

    fn fail(&mut self, err: Error) -> Error {
        self.state = State::Failed;
        err
    }

    /// Fills `block` as far as the input goes and returns how many bytes it got (fewer than
    /// a block only at the end of the input).
    fn fill_block(&mut self, block: &mut [u8; BLOCK]) -> Result<usize> {
        let start = self.pos;
        let mut got = 0usize;
        while got < BLOCK {
            match self.src.read(&mut block[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // E.g. a compressed stream's trailer does not match.
                Err(e) => return Err(Error::io(e, start + got as u64)),
            }
        }
        self.pos += got as u64;
        Ok(got)
    }

    /// Reads up to one block; `Ok(None)` on a clean end of input at a block boundary.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<Option<()>> {
        let start = self.pos;
        let got = self.fill_block(block)?;
        match got {
            0 => Ok(None),
            BLOCK => Ok(Some(())),
            n => Err(Error::new(
                ErrorKind::Truncated(format!("header block cut short after {n} of 512 bytes")),
                start,
            )),
        }
    }

    fn skip_bytes(&mut self, mut n: u64) -> io::Result<u64> {
        let mut skipped = 0;
        while n > 0 {
            let buf = match self.src.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                break;
            }
            let k = (buf.len() as u64).min(n) as usize;
            self.src.consume(k);
            n -= k as u64;
            skipped += k as u64;
            self.pos += k as u64;
        }
        Ok(skipped)
    }

    fn read_meta(&mut self, size: u64, header_offset: u64, what: &str) -> Result<Vec<u8>> {
        if size > MAX_META_SIZE {
            return Err(Error::new(
                ErrorKind::BadHeader(format!(
                    "{what} of {size} bytes exceeds the {MAX_META_SIZE}-byte limit"
                )),
                header_offset,
            ));
        }
        let mut data = vec![0u8; size as usize];
        self.src.read_exact(&mut data).map_err(|e| {
            Error::new(
                ErrorKind::Truncated(format!("{what} data cut short: {e}")),
                header_offset,
            )
        })?;
        self.pos += size;
        self.skip_padding(size, None)?;
        Ok(data)
    }

    fn skip_padding(&mut self, size: u64, member: Option<&[u8]>) -> Result<()> {
        // A short padding is not an error here: the missing end marker is reported next.
        self.skip_bytes(padding(size)).map_err(|e| {
            let err = Error::io(e, self.pos);
            match member {
                Some(m) => err.with_member(m),
                None => err,
            }
        })?;
        Ok(())
    }

    /// Advances to the next regular file, skipping the data of the current one if unread.
    ///
    /// Returns `Ok(None)` at the end-of-archive marker. Any damage is an error,
    /// after which the reader is finished.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        match self.state {
            State::End | State::Failed => return Ok(None),
            State::Data { .. } => self.skip_data()?,
            State::Header => {}
        }
        match self.next_entry_inner() {
            Ok(e) => Ok(e),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn next_entry_inner(&mut self) -> Result<Option<Entry>> {
        let mut block = [0u8; BLOCK];
        let mut long_name: Option<Vec<u8>> = None;
        let mut local = PaxInfo::default();
        let mut entry_start: Option<u64> = None;
        // With `ignore_zeros`, set while only zero blocks were read since the last entry.
        let mut after_zeros = false;
        loop {
            let offset = self.pos;
            if self.read_block(&mut block)?.is_none() {
                if after_zeros {
                    self.state = State::End;
                    return Ok(None);
                }
                let msg = if offset == 0 {
                    "empty file: no tar header".to_string()
                } else if entry_start.is_some() {
                    "stream ended after an extended header, before its entry".to_string()
                } else {
                    "stream ended without the end-of-archive marker".to_string()
                };
                return Err(Error::new(ErrorKind::Truncated(msg), offset));
            }
            let header = match parse_block(&block) {
                Ok(Block::End) => {
                    if entry_start.is_some() {
                        return Err(Error::new(
                            ErrorKind::BadHeader(
                                "end-of-archive marker right after an extended header".into(),
                            ),
                            offset,
                        ));
                    }
                    if self.opts.ignore_zeros {
                        after_zeros = true;
                        continue;
                    }
                    if self.opts.check_after_end {
                        self.check_after_end(offset)?;
                    }
                    self.state = State::End;
                    return Ok(None);
                }
                Ok(Block::Header(h)) => h,
                Err(e) => {
                    // Name the member when the damaged block still shows one.
                    let err = e.at(offset);
                    let name = &block[..100];
                    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(100)];
                    return Err(if name.is_empty() {
                        err
                    } else {
                        err.with_member(name)
                    });
                }
            };
            after_zeros = false;
            let start = *entry_start.get_or_insert(offset);
            let mut pax = self.global.clone();
            pax.merge(&local);
            let size = pax.size.unwrap_or(header.size);
            if size > MAX_MEMBER_SIZE {
                return Err(Error::new(
                    ErrorKind::BadHeader(format!("member size {size} is out of range")),
                    offset,
                )
                .with_member(pax.path.as_deref().unwrap_or(&header.name)));
            }
            match header.kind {
                EntryType::GnuLongName => {
                    let data = self.read_meta(size, offset, "GNU long name")?;
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    long_name = Some(data[..end].to_vec());
                }
                EntryType::GnuLongLink => {
                    self.read_meta(size, offset, "GNU long link")?;
                }
                EntryType::PaxLocal => {
                    let data = self.read_meta(size, offset, "pax header")?;
                    let info = parse_pax(&data).map_err(|e| e.at(offset))?;
                    local.merge(&info);
                }
                EntryType::PaxGlobal => {
                    let data = self.read_meta(size, offset, "pax global header")?;
                    let info = parse_pax(&data).map_err(|e| e.at(offset))?;
                    self.global.merge(&info);
                    entry_start = None;
                }
                EntryType::Special => {
                    // Links, directories and devices carry no data blocks (as in tarfile).
                    long_name = None;
                    local = PaxInfo::default();
                    entry_start = None;
                }
                EntryType::Unknown => {
                    let skipped = self.skip_bytes(size).map_err(|e| Error::io(e, offset))?;
                    if skipped < size {
                        return Err(Error::new(
                            ErrorKind::Truncated(format!(
                                "entry of type {:?} cut short",
                                header.typeflag as char
                            )),
                            offset,
                        ));
                    }
                    self.skip_padding(size, None)?;
                    long_name = None;
                    local = PaxInfo::default();
                    entry_start = None;
                }
                EntryType::Sparse | EntryType::Regular => {
                    let name = pax.path.clone().or(long_name.take()).unwrap_or(header.name);
                    if header.kind == EntryType::Sparse || pax.sparse {
                        return Err(Error::new(
                            ErrorKind::Unsupported("sparse files cannot be read as samples".into()),
                            start,
                        )
                        .with_member(&name));
                    }
                    let entry = Entry {
                        name,
                        size,
                        header_offset: start,
                        data_offset: self.pos,
                    };
                    self.state = State::Data { remaining: size };
                    self.current_offset = start;
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// Reads the rest of the input after the end marker at `marker`: a valid header there
    /// means the marker is a zeroed block in the middle of the shard, not its end.
    fn check_after_end(&mut self, marker: u64) -> Result<()> {
        let mut block = [0u8; BLOCK];
        loop {
            let offset = self.pos;
            let got = self.fill_block(&mut block)?;
            // A partial block of padding at the very end is not damage.
            if got < BLOCK {
                return Ok(());
            }
            if let Ok(Block::Header(h)) = parse_block(&block) {
                let msg = format!(
                    "a valid tar header follows the end-of-archive marker at byte {marker}: \
                     a zero block in the middle of the shard hides the rest of it \
                     (read concatenated archives with ignore_zeros=True)"
                );
                return Err(Error::new(ErrorKind::BadHeader(msg), offset).with_member(&h.name));
            }
        }
    }

    /// Errors in member data point at the member's header; callers add the member name.
    fn data_error(&self, msg: String) -> Error {
        Error::new(ErrorKind::Truncated(msg), self.current_offset)
    }

    fn pending(&self) -> Result<u64> {
        match self.state {
            State::Data { remaining } => Ok(remaining),
            _ => Err(Error::new(
                ErrorKind::Invalid("no member data is pending".into()),
                self.pos,
            )),
        }
    }

    fn finish_data(&mut self, size: u64) -> Result<()> {
        self.skip_padding(size, None)?;
        self.state = State::Header;
        Ok(())
    }

    /// Reads the whole pending member into `buf`, which must be exactly its size.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<()> {
        let remaining = self.pending()?;
        if buf.len() as u64 != remaining {
            return Err(Error::new(
                ErrorKind::Invalid("buffer size does not match member size".into()),
                self.pos,
            ));
        }
        let mut got = 0usize;
        while got < buf.len() {
            match self.src.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let err = Error::io(e, self.pos + got as u64);
                    return Err(self.fail(err));
                }
            }
        }
        self.pos += got as u64;
        if got < buf.len() {
            let msg = format!(
                "member data cut short: expected {} bytes, got {got}",
                buf.len()
            );
            let err = self.data_error(msg);
            return Err(self.fail(err));
        }
        self.finish_data(remaining).map_err(|e| self.fail(e))
    }

    /// Reads the whole pending member into a new vector.
    pub fn read_data_vec(&mut self) -> Result<Vec<u8>> {
        let remaining = self.pending()?;
        // Small members usually sit whole in the read buffer: copy without zero-filling.
        if let Ok(buf) = self.src.fill_buf() {
            if buf.len() as u64 >= remaining {
                let v = buf[..remaining as usize].to_vec();
                self.src.consume(remaining as usize);
                self.pos += remaining;
                self.finish_data(remaining).map_err(|e| self.fail(e))?;
                return Ok(v);
            }
        }
        if remaining <= PREALLOC_LIMIT {
            let mut v = vec![0u8; remaining as usize];
            self.read_data(&mut v)?;
            return Ok(v);
        }
        let mut v = Vec::with_capacity(PREALLOC_LIMIT as usize);
        let got = match (&mut self.src).take(remaining).read_to_end(&mut v) {
            Ok(n) => n as u64,
            Err(e) => {
                let err = Error::io(e, self.pos);
                return Err(self.fail(err));
            }
        };
        self.pos += got;
        if got < remaining {
            let msg = format!("member data cut short: expected {remaining} bytes, got {got}");
            let err = self.data_error(msg);
            return Err(self.fail(err));
        }
        self.finish_data(remaining).map_err(|e| self.fail(e))?;
        Ok(v)
    }

    /// Skips the pending member's data.
    pub fn skip_data(&mut self) -> Result<()> {
        let remaining = self.pending()?;
        let got = match self.skip_bytes(remaining) {
            Ok(n) => n,
            Err(e) => {
                let err = Error::io(e, self.pos);
                return Err(self.fail(err));
            }
        };
        if got < remaining {
            let msg = format!("member data cut short: expected {remaining} bytes, got {got}");
            let err = self.data_error(msg);
            return Err(self.fail(err));
        }
        self.finish_data(remaining).map_err(|e| self.fail(e))
    }
}
