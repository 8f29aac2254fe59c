//! Tar stream → samples, in batches.
//!
//! [`SampleStream::fill`] does all per-member work (headers, metadata skipping,
//! key splitting, grouping, copying small payloads) in one call, so a binding
//! can run it without holding an interpreter lock. Large payloads are left for
//! the caller to read straight into their final buffer. In member mode
//! ([`SampleStream::members`]) every member is a sample of its own, with the
//! same batch limits and the same large-payload rule.

use std::io::BufRead;

use crate::error::{Error, ErrorKind, Result};
use crate::group::{Grouper, Rejected, Sample, Split};
use crate::keys::is_meta;
use crate::tar::{Entry, ReadOptions, TarReader};

/// A member's data: read by the core, or supplied by the caller.
#[derive(Debug)]
pub enum Payload<T> {
    /// Read into a vector by [`SampleStream::fill`].
    Bytes(Vec<u8>),
    /// Read by the caller (e.g. directly into a Python object).
    External(T),
}

/// Limits for one [`SampleStream::fill`] call.
#[derive(Debug, Clone, Copy)]
pub struct FillLimits {
    /// Stop after this many completed samples.
    pub max_samples: usize,
    /// Stop after this many payload bytes were copied.
    pub max_bytes: u64,
    /// Members at least this large are handed to the caller unread.
    pub big_member: u64,
}

impl Default for FillLimits {
    fn default() -> Self {
        FillLimits {
            max_samples: 256,
            max_bytes: 8 << 20,
            big_member: 256 << 10,
        }
    }
}

/// Why [`SampleStream::fill`] returned.
#[derive(Debug)]
pub enum Stop {
    /// A limit was reached; call again.
    Full,
    /// The shard ended cleanly.
    End,
    /// A large member is next: read its data with [`SampleStream::reader`] and pass it to
    /// [`SampleStream::deliver`].
    Big(Entry),
    /// A recoverable problem (duplicate extension, failing name filter): the member was
    /// skipped, the stream can continue.
    Soft(Error),
    /// The shard is damaged; the sample in progress was dropped and the stream is over.
    Fatal(Error),
}

/// What a name filter decides for a member.
pub enum Decision {
    /// Keep it under its own name.
    Keep,
    /// Keep it under a new name.
    Rename(Vec<u8>),
    /// Skip it.
    Skip,
}

/// Samples from one shard.
pub struct SampleStream<R: BufRead, T> {
    reader: TarReader<R>,
    grouper: Grouper<Payload<T>>,
    pending: Option<(Vec<u8>, Split)>,
    finished: bool,
    /// False in member mode.
    group: bool,
    /// Member mode: the last member still counts when the header after it is damaged.
    keep_before_damage: bool,
}

/// A name filter that keeps every member unchanged.
pub fn keep_all(_name: &[u8]) -> Result<Decision> {
    Ok(Decision::Keep)
}

impl<R: BufRead, T> SampleStream<R, T> {
    /// A stream over a (decompressed) tar source.
    pub fn new(src: R) -> Self {
        Self::with_options(src, ReadOptions::default())
    }

    /// A stream over a (decompressed) tar source, with the reader's end-of-archive options.
    pub fn with_options(src: R, opts: ReadOptions) -> Self {
        SampleStream {
            reader: TarReader::with_options(src, opts),
            grouper: Grouper::new(true),
            pending: None,
            finished: false,
            group: true,
            keep_before_damage: false,
        }
    }

    /// Member mode: every regular member, metadata included, is a sample of its own whose
    /// key is the whole name and whose one member has the empty extension.
    ///
    /// A member is handed out once the header after it was read, so a compressed
    /// stream's trailer is checked before its last member counts. With
    /// `keep_before_damage` (right for uncompressed input, whose bytes were read whole)
    /// a member still counts when that next header is damaged.
    pub fn members(src: R, opts: ReadOptions, keep_before_damage: bool) -> Self {
        SampleStream {
            group: false,
            keep_before_damage,
            ..Self::with_options(src, opts)
        }
    }

    /// The underlying reader, to read a [`Stop::Big`] member's data.
    pub fn reader(&mut self) -> &mut TarReader<R> {
        &mut self.reader
    }

    /// The extension with this id (ids appear in [`Sample::members`]).
    pub fn ext(&self, id: u32) -> &[u8] {
        self.grouper.ext(id)
    }

    /// Number of distinct extensions seen so far (ids are below this).
    pub fn ext_count(&self) -> usize {
        self.grouper.ext_count()
    }

    /// True once the shard ended or failed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn fatal(&mut self, err: Error) -> Stop {
        self.grouper.discard();
        self.pending = None;
        self.finished = true;
        Stop::Fatal(err)
    }

    /// Damage after the sample in progress (whose next header was read): member mode may
    /// still hand it out.
    fn damaged_after(&mut self, out: &mut Vec<Sample<Payload<T>>>, err: Error) -> Stop {
        if !self.group && self.keep_before_damage {
            out.extend(self.grouper.finish());
        }
        self.fatal(err)
    }

    /// Adds the data of the member announced by [`Stop::Big`]; returns a completed sample.
    pub fn deliver(&mut self, data: Payload<T>) -> Option<Sample<Payload<T>>> {
        let (name, split) = self.pending.take()?;
        self.grouper.push_owned(name, split, data)
    }

    /// Reports that reading a [`Stop::Big`] member failed: the shard is over.
    pub fn abort(&mut self, err: Error) -> Stop {
        self.fatal(err)
    }

    /// Reads members until a limit, a large member, an error or the end of the shard.
    ///
    /// Completed samples are appended to `out`. `filter` sees every member name
    /// (but metadata ones when grouping) and may rename or skip it.
    pub fn fill(
        &mut self,
        out: &mut Vec<Sample<Payload<T>>>,
        limits: FillLimits,
        filter: &mut dyn FnMut(&[u8]) -> Result<Decision>,
    ) -> Stop {
        if self.finished {
            return Stop::End;
        }
        let mut bytes = 0u64;
        let start = out.len();
        loop {
            if out.len() - start >= limits.max_samples || bytes >= limits.max_bytes {
                return Stop::Full;
            }
            let entry = match self.reader.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => {
                    out.extend(self.grouper.finish());
                    self.finished = true;
                    return Stop::End;
                }
                Err(e) => return self.damaged_after(out, e),
            };
            if self.group && is_meta(&entry.name) {
                if let Err(e) = self.reader.skip_data() {
                    return self.damaged_after(out, e.with_member(&entry.name));
                }
                continue;
            }
            let renamed = match filter(&entry.name) {
                Ok(Decision::Keep) => None,
                Ok(Decision::Rename(n)) => Some(n),
                Ok(Decision::Skip) => {
                    if let Err(e) = self.reader.skip_data() {
                        return self.damaged_after(out, e.with_member(&entry.name));
                    }
                    continue;
                }
                Err(e) => {
                    // A failing filter concerns this member only: skip it, keep the shard.
                    if let Err(e) = self.reader.skip_data() {
                        return self.damaged_after(out, e.with_member(&entry.name));
                    }
                    let e = if e.member.is_none() {
                        e.with_member(&entry.name)
                    } else {
                        e
                    };
                    return Stop::Soft(e);
                }
            };
            let name = renamed.as_deref().unwrap_or(&entry.name);
            let checked = if self.group {
                self.grouper.check(name)
            } else {
                Ok(self.grouper.whole(name))
            };
            let split = match checked {
                Ok(split) => split,
                Err(Rejected::NoKey) => {
                    if let Err(e) = self.reader.skip_data() {
                        return self.damaged_after(out, e.with_member(&entry.name));
                    }
                    continue;
                }
                Err(Rejected::Duplicate { key, ext }) => {
                    if let Err(e) = self.reader.skip_data() {
                        return self.damaged_after(out, e.with_member(&entry.name));
                    }
                    let err = Error::new(
                        ErrorKind::DuplicateMember {
                            key: String::from_utf8_lossy(&key).into_owned(),
                            ext: String::from_utf8_lossy(&ext).into_owned(),
                        },
                        entry.header_offset,
                    )
                    .with_member(name);
                    return Stop::Soft(err);
                }
            };
            // A new key proves the previous sample complete, even if this member turns out damaged.
            if split.new_sample {
                out.extend(self.grouper.finish());
            }
            if entry.size >= limits.big_member {
                let name = renamed.unwrap_or_else(|| entry.name.clone());
                self.pending = Some((name, split));
                return Stop::Big(entry);
            }
            let data = match self.reader.read_data_vec() {
                Ok(d) => d,
                Err(e) => return self.damaged_after(out, e.with_member(&entry.name)),
            };
            bytes += data.len() as u64;
            let name = renamed.unwrap_or(entry.name);
            if let Some(done) = self.grouper.push_owned(name, split, Payload::Bytes(data)) {
                out.push(done);
            }
        }
    }
}

/// A sample with its extensions spelled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSample {
    /// The sample key.
    pub key: Vec<u8>,
    /// `(extension, data)` pairs in archive order.
    pub members: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads a whole shard into memory (for tests and tools): every sample, or the first error.
pub fn read_all<R: BufRead>(src: R) -> Result<Vec<OwnedSample>> {
    let mut stream: SampleStream<R, Vec<u8>> = SampleStream::new(src);
    let mut out = Vec::new();
    let limits = FillLimits::default();
    loop {
        let mut batch = Vec::new();
        let mut stop = stream.fill(&mut batch, limits, &mut keep_all);
        if let Stop::Big(_) = stop {
            match stream.reader().read_data_vec() {
                Ok(data) => {
                    batch.extend(stream.deliver(Payload::External(data)));
                    stop = Stop::Full;
                }
                Err(e) => {
                    let name = match &stop {
                        Stop::Big(entry) => entry.name.clone(),
                        _ => Vec::new(),
                    };
                    stop = stream.abort(e.with_member(&name));
                }
            }
        }
        for s in batch {
            let members = s
                .members
                .into_iter()
                .map(|(e, p)| match p {
                    Payload::Bytes(b) | Payload::External(b) => (stream.ext(e).to_vec(), b),
                })
                .collect();
            out.push(OwnedSample {
                key: s.key,
                members,
            });
        }
        match stop {
            Stop::Full => continue,
            Stop::End => return Ok(out),
            Stop::Soft(e) | Stop::Fatal(e) => return Err(e),
            Stop::Big(_) => continue,
        }
    }
}
