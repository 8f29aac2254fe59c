//! Decoding of single 512-byte tar header blocks and pax records.
//!
//! The rules follow what Python's `tarfile` accepts, so that every archive it
//! reads is read here the same way; where `tarfile` silently stops on damage,
//! we report it instead.

use crate::{Error, ErrorKind, Result};

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// Longest GNU long name / pax header we accept; real ones are a few hundred bytes.
pub const MAX_META_SIZE: u64 = 1 << 20;

/// The entry type, as far as a reader of regular files cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// `0`, `\0` or `7`: a regular file.
    Regular,
    /// `L`: the data is the long name of the next entry.
    GnuLongName,
    /// `K`: the data is the long link target of the next entry.
    GnuLongLink,
    /// `x` / `X`: pax extended header for the next entry.
    PaxLocal,
    /// `g`: pax global header.
    PaxGlobal,
    /// `S`: GNU sparse file (refused).
    Sparse,
    /// `1`–`6`: links, devices, directories, fifos. They carry no data blocks.
    Special,
    /// Any other type: skipped along with its data.
    Unknown,
}

/// The fields of a header block that a reader needs.
#[derive(Debug, Clone)]
pub struct Header {
    /// Name, with the ustar prefix applied (raw bytes, usually UTF-8).
    pub name: Vec<u8>,
    /// Data size from the size field.
    pub size: u64,
    /// Entry type.
    pub kind: EntryType,
    /// Raw typeflag byte.
    pub typeflag: u8,
}

/// Result of decoding one block.
#[derive(Debug)]
pub enum Block {
    /// An all-zero block: end of archive.
    End,
    /// A valid header.
    Header(Header),
}

/// Bytes up to the first NUL.
fn nts(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(p) => &field[..p],
        None => field,
    }
}

/// A malformed header; the reader adds the position.
fn bad(msg: impl Into<String>) -> Error {
    ErrorKind::BadHeader(msg.into()).into()
}

/// Decodes a numeric field: octal text, or GNU base-256 when the high bit is set.
pub fn parse_number(field: &[u8]) -> Result<u64> {
    number(field).map_err(bad)
}

fn number(field: &[u8]) -> std::result::Result<u64, String> {
    if let Some(&first) = field.first() {
        if first == 0x80 {
            let mut n: u64 = 0;
            for &b in &field[1..] {
                if n >> 56 != 0 {
                    return Err("numeric field overflows 64 bits".to_string());
                }
                n = (n << 8) | u64::from(b);
            }
            return Ok(n);
        }
        if first == 0xff {
            return Err("negative numeric field".to_string());
        }
    }
    let text = nts(field);
    let text = trim_ascii(text);
    let mut n: u64 = 0;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return Err(format!(
                "invalid octal number field {:?}",
                String::from_utf8_lossy(field)
            ));
        }
        n = n
            .checked_mul(8)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| "numeric field overflows 64 bits".to_string())?;
    }
    Ok(n)
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Verifies the checksum the way `tarfile` does: unsigned or signed byte sums both pass.
fn checksum_ok(block: &[u8; BLOCK]) -> Result<()> {
    let stored = number(&block[148..156]).map_err(|e| bad(format!("bad checksum field: {e}")))?;
    // The checksum field itself counts as eight spaces.
    let field: u32 = block[148..156].iter().map(|&b| u32::from(b)).sum();
    let unsigned =
        i64::from(block.iter().map(|&b| u32::from(b)).sum::<u32>() - field + 8 * u32::from(b' '));
    let stored = stored as i64;
    if stored == unsigned {
        return Ok(());
    }
    // Some old writers summed signed bytes; tarfile accepts those too.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                i64::from(b' ')
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored == signed {
        Ok(())
    } else {
        Err(bad(format!(
            "checksum mismatch (stored {stored}, computed {unsigned})"
        )))
    }
}

/// Decodes one header block.
pub fn parse_block(block: &[u8; BLOCK]) -> Result<Block> {
    if block.iter().all(|&b| b == 0) {
        return Ok(Block::End);
    }
    checksum_ok(block)?;
    let typeflag = block[156];
    let kind = match typeflag {
        b'0' | 0 | b'7' => EntryType::Regular,
        b'L' => EntryType::GnuLongName,
        b'K' => EntryType::GnuLongLink,
        b'x' | b'X' => EntryType::PaxLocal,
        b'g' => EntryType::PaxGlobal,
        b'S' => EntryType::Sparse,
        b'1'..=b'6' => EntryType::Special,
        _ => EntryType::Unknown,
    };
    let size = parse_number(&block[124..136])?;
    let mut name = nts(&block[0..100]).to_vec();
    // tarfile treats an old-style regular entry whose name ends in '/' as a directory.
    let kind = if typeflag == 0 && name.ends_with(b"/") {
        EntryType::Special
    } else {
        kind
    };
    let prefix = nts(&block[345..500]);
    let gnu_type = matches!(typeflag, b'L' | b'K' | b'S');
    if !prefix.is_empty() && !gnu_type {
        let mut full = Vec::with_capacity(prefix.len() + 1 + name.len());
        full.extend_from_slice(prefix);
        full.push(b'/');
        full.extend_from_slice(&name);
        name = full;
    }
    Ok(Block::Header(Header {
        name,
        size,
        kind,
        typeflag,
    }))
}

/// The pax keys a reader of regular files uses.
#[derive(Debug, Clone, Default)]
pub struct PaxInfo {
    /// `path` record.
    pub path: Option<Vec<u8>>,
    /// `size` record.
    pub size: Option<u64>,
    /// A `GNU.sparse.*` record was present.
    pub sparse: bool,
}

impl PaxInfo {
    /// Values from `other` override ours.
    pub fn merge(&mut self, other: &PaxInfo) {
        if other.path.is_some() {
            self.path.clone_from(&other.path);
        }
        if other.size.is_some() {
            self.size = other.size;
        }
        self.sparse |= other.sparse;
    }
}

/// Parses pax records `"<len> <key>=<value>\n"`.
pub fn parse_pax(data: &[u8]) -> Result<PaxInfo> {
    let mut info = PaxInfo::default();
    let mut pos = 0usize;
    while pos < data.len() {
        // Trailing NUL padding ends the records.
        if data[pos] == 0 {
            break;
        }
        let space = data[pos..]
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("pax record without length"))?;
        let len_text = &data[pos..pos + space];
        let len: usize = std::str::from_utf8(len_text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("pax record with a bad length"))?;
        // The length comes from the file: an addition near usize::MAX must not wrap.
        let end = match pos.checked_add(len) {
            Some(end) if len > space + 1 && end <= data.len() && data[end - 1] == b'\n' => end,
            _ => return Err(bad("pax record length out of range")),
        };
        let record = &data[pos + space + 1..end - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("pax record without '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => info.path = Some(value.to_vec()),
            b"size" => {
                let v = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| bad("pax size record is not a number"))?;
                info.size = Some(v);
            }
            k if k.starts_with(b"GNU.sparse.") => info.sparse = true,
            _ => {}
        }
        pos = end;
    }
    Ok(info)
}

/// Number of padding bytes after `size` bytes of data.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: u64, typeflag: u8) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..107].copy_from_slice(b"0000644");
        b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        b[156] = typeflag;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        b
    }

    #[test]
    fn parses_regular_header() {
        let b = header("a.jpg", 1234, b'0');
        match parse_block(&b).unwrap() {
            Block::Header(h) => {
                assert_eq!(h.name, b"a.jpg");
                assert_eq!(h.size, 1234);
                assert_eq!(h.kind, EntryType::Regular);
            }
            Block::End => panic!("not end"),
        }
    }

    #[test]
    fn detects_bad_checksum() {
        let mut b = header("a.jpg", 1, b'0');
        b[0] = b'b';
        assert!(parse_block(&b).is_err());
    }

    #[test]
    fn zero_block_is_end() {
        assert!(matches!(parse_block(&[0u8; BLOCK]).unwrap(), Block::End));
    }

    #[test]
    fn base256_and_octal_numbers() {
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[11] = 5;
        f[10] = 1;
        assert_eq!(parse_number(&f).unwrap(), 261);
        assert_eq!(parse_number(b"00000000017\0").unwrap(), 15);
        assert_eq!(parse_number(b"   17 \0\0\0\0\0\0").unwrap(), 15);
        assert_eq!(parse_number(b"\0\0\0\0").unwrap(), 0);
        assert!(parse_number(b"0009").is_err());
        let mut neg = [0xffu8; 12];
        neg[0] = 0xff;
        assert!(parse_number(&neg).is_err());
    }

    #[test]
    fn pax_records() {
        let p = parse_pax(b"20 path=abc/def.txt\n11 size=99\n").unwrap();
        assert_eq!(p.path.as_deref(), Some(&b"abc/def.txt"[..]));
        assert_eq!(p.size, Some(99));
        assert!(parse_pax(b"99 path=x\n").is_err());
        assert!(parse_pax(b"garbage").is_err());
        assert!(parse_pax(b"22 GNU.sparse.major=1\n").unwrap().sparse);
        // A length near 2^64 once wrapped `pos + len` and panicked on the slice (issue 9).
        assert!(parse_pax(b"13 path=a\nbc\n18446744073709551613 x=y\n").is_err());
        assert!(parse_pax(b"18446744073709551615 x=y\n").is_err());
    }

    #[test]
    fn padding_values() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
