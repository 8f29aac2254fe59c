//! `scan_shard`: reads a whole local shard to prove it complete, without building samples.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use ppwds_core::source::{tar_stream_with, Compression};
use ppwds_core::tar::TarReader;
use ppwds_core::{Error, ErrorKind};
use pyo3::prelude::*;

use crate::errors::{release, to_pyerr, ShardContext};

/// Reads every header of the tar (plain or compressed) at `path` up to its
/// end-of-archive marker, skipping member data, and for compressed shards the rest of
/// the compressed stream (so a decoder sees its trailer). Returns the number of regular
/// members.
///
/// Raises the usual `ShardError` subclasses (naming `url`, member and offset) for a cut
/// or damaged shard; a missing end marker is a `TruncatedShardError`. Used to accept a
/// download into a cache only when it is complete.
#[pyfunction]
#[pyo3(signature = (path, url=None))]
pub fn scan_shard(py: Python<'_>, path: PathBuf, url: Option<String>) -> PyResult<u64> {
    let url = url.unwrap_or_else(|| path.to_string_lossy().into_owned());
    let mut ctx = ShardContext {
        path: Some(&path),
        ..ShardContext::new(&url)
    };
    let file = File::open(&path).map_err(|e| to_pyerr(py, ErrorKind::Io(e).into(), &ctx))?;
    let mut compressed = false;
    let result = release(py, || {
        let (mut stream, kind) = tar_stream_with(Box::new(file), &crate::xz::extra_decoder)?;
        compressed = kind != Compression::None;
        let mut reader = TarReader::new(&mut stream);
        let mut count = 0u64;
        while let Some(entry) = reader.next_entry()? {
            count += 1;
            reader.skip_data().map_err(|e| {
                if e.member.is_none() {
                    e.with_member(&entry.name)
                } else {
                    e
                }
            })?;
        }
        let end = reader.position();
        drop(reader);
        if compressed {
            drain(&mut stream).map_err(|e| match Error::io(e, end) {
                Error {
                    kind: ErrorKind::Truncated(m),
                    offset,
                    member,
                } => Error {
                    kind: ErrorKind::Decompress(format!("after the end-of-archive marker: {m}")),
                    offset,
                    member,
                },
                other => other,
            })?;
        }
        Ok(count)
    });
    ctx.compressed = compressed;
    result.map_err(|e| to_pyerr(py, e, &ctx))
}

/// Reads what is left of the decompressed stream, so the decoder checks its trailer.
fn drain(rest: &mut impl Read) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
