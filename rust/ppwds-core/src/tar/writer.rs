//! Writing tar archives that Python's `tarfile` and GNU tar read back exactly.
//!
//! Names that fit are written as plain ustar (with the prefix field when
//! that makes them fit); longer names and huge sizes get a pax header, so
//! nothing is ever truncated.

use std::io::{self, Write};

use super::header::{padding, BLOCK};

/// tarfile pads archives to multiples of this record size.
pub const RECORD_SIZE: u64 = 20 * BLOCK as u64;

const MAX_OCTAL_SIZE: u64 = 0o77777777777;

/// Ownership and time fields written for every member.
#[derive(Debug, Clone)]
pub struct MemberMeta {
    /// Permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Owner user name.
    pub uname: String,
    /// Owner group name.
    pub gname: String,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
}

impl Default for MemberMeta {
    fn default() -> Self {
        MemberMeta {
            mode: 0o444,
            uid: 0,
            gid: 0,
            uname: "bigdata".into(),
            gname: "bigdata".into(),
            mtime: 0,
        }
    }
}

fn put_octal(field: &mut [u8], value: u64) {
    // Width-1 digits and a NUL terminator, as tarfile writes them.
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let text = text.as_bytes();
    let text = &text[text.len().saturating_sub(digits)..];
    field[..text.len()].copy_from_slice(text);
    field[digits] = 0;
}

fn put_str(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Splits a long name into ustar `(prefix, name)` if possible.
fn ustar_split(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((&[], name));
    }
    if name.len() > 256 {
        return None;
    }
    // The prefix must end at a '/', be at most 155 bytes, and leave at most 100 bytes.
    let mut best = None;
    for (i, &b) in name.iter().enumerate() {
        if b == b'/' && i <= 155 && name.len() - i - 1 <= 100 && i > 0 {
            best = Some(i);
            break;
        }
    }
    best.map(|i| (&name[..i], &name[i + 1..]))
}

fn header_block(
    name: &[u8],
    prefix: &[u8],
    size: u64,
    typeflag: u8,
    meta: &MemberMeta,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], name);
    put_octal(&mut b[100..108], u64::from(meta.mode));
    put_octal(&mut b[108..116], u64::from(meta.uid));
    put_octal(&mut b[116..124], u64::from(meta.gid));
    put_octal(&mut b[124..136], size.min(MAX_OCTAL_SIZE));
    put_octal(&mut b[136..148], meta.mtime);
    b[156] = typeflag;
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put_str(&mut b[265..297], meta.uname.as_bytes());
    put_str(&mut b[297..329], meta.gname.as_bytes());
    put_octal(&mut b[329..337], 0);
    put_octal(&mut b[337..345], 0);
    put_str(&mut b[345..500], prefix);
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    // Six digits, NUL, space: the layout tarfile and GNU tar use.
    let text = format!("{sum:06o}");
    b[148..154].copy_from_slice(&text.as_bytes()[text.len() - 6..]);
    b[154] = 0;
    b[155] = b' ';
    b
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // The length prefix counts itself, so find the fixed point.
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Encodes the header block(s) for one regular file.
pub fn encode_header(name: &[u8], size: u64, meta: &MemberMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK);
    let split = ustar_split(name);
    let needs_pax = split.is_none() || size > MAX_OCTAL_SIZE;
    if needs_pax {
        let mut records = Vec::new();
        if split.is_none() {
            records.extend(pax_record("path", name));
        }
        if size > MAX_OCTAL_SIZE {
            records.extend(pax_record("size", size.to_string().as_bytes()));
        }
        let mut pax_name = b"././@PaxHeader".to_vec();
        pax_name.truncate(100);
        out.extend_from_slice(&header_block(
            &pax_name,
            &[],
            records.len() as u64,
            b'x',
            meta,
        ));
        let pad = padding(records.len() as u64) as usize;
        out.extend_from_slice(&records);
        out.resize(out.len() + pad, 0);
    }
    let (prefix, short) = match split {
        Some(p) => p,
        None => (&[][..], &name[..name.len().min(100)]),
    };
    out.extend_from_slice(&header_block(short, prefix, size, b'0', meta));
    out
}

/// Writes members to any byte sink.
pub struct TarBuilder<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> TarBuilder<W> {
    /// A builder writing to `out`.
    pub fn new(out: W) -> Self {
        TarBuilder { out, written: 0 }
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Appends one regular file.
    pub fn append(&mut self, name: &[u8], data: &[u8], meta: &MemberMeta) -> io::Result<()> {
        let header = encode_header(name, data.len() as u64, meta);
        self.out.write_all(&header)?;
        self.out.write_all(data)?;
        let pad = padding(data.len() as u64) as usize;
        self.out.write_all(&[0u8; BLOCK][..pad])?;
        self.written += (header.len() + data.len() + pad) as u64;
        Ok(())
    }

    /// Writes the end-of-archive marker and record padding; returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        let mut end = 2 * BLOCK as u64;
        let total = self.written + end;
        end += (RECORD_SIZE - total % RECORD_SIZE) % RECORD_SIZE;
        let zeros = vec![0u8; end as usize];
        self.out.write_all(&zeros)?;
        self.written += end;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Mutable access to the sink.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_is_self_consistent() {
        for n in [0usize, 1, 5, 90, 95, 96, 97, 98, 200, 995, 996, 1000] {
            let v = vec![b'a'; n];
            let r = pax_record("path", &v);
            let sp = r.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&r[..sp]).unwrap().parse().unwrap();
            assert_eq!(len, r.len(), "value length {n}");
        }
    }

    #[test]
    fn ustar_split_rules() {
        assert!(ustar_split(&[b'a'; 100]).is_some());
        assert!(ustar_split(&[b'a'; 101]).is_none());
        let mut n = vec![b'd'; 120];
        n[50] = b'/';
        let (p, s) = ustar_split(&n).unwrap();
        assert_eq!(p.len(), 50);
        assert_eq!(s.len(), 69);
    }
}
