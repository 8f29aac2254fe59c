//! Tar headers that Python's `tarfile` and GNU tar read back exactly.
//!
//! The pieces [`crate::encoder::ShardEncoder`] builds archives from. Names that fit are written as plain ustar (with the prefix field when
//! that makes them fit); longer names and huge sizes get a pax header, so
//! nothing is ever truncated.
//!
//! The hot path is [`HeaderTemplate`]: every field that is the same for all
//! members of a writer is rendered once, so a member costs a name copy, eleven
//! octal digits and a partial checksum, appended to a caller-owned buffer.

use std::io::Write;

use super::header::{padding, BLOCK};
use crate::{Error, ErrorKind, Result};

/// tarfile pads archives to multiples of this record size.
pub const RECORD_SIZE: u64 = 20 * BLOCK as u64;

const MAX_OCTAL_SIZE: u64 = 0o77777777777;
const MAX_OCTAL_ID: u64 = 0o7777777;
const ZEROS: [u8; BLOCK] = [0u8; BLOCK];

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

/// A value that cannot be stored in a tar header.
fn unfit(msg: String) -> Error {
    ErrorKind::InvalidMember(msg).into()
}

impl MemberMeta {
    /// Checks that every field fits its ustar field without truncation.
    pub fn validate(&self) -> Result<()> {
        if u64::from(self.mode) > MAX_OCTAL_ID {
            return Err(unfit(format!(
                "mode {:o} does not fit a tar header",
                self.mode
            )));
        }
        for (what, id) in [("uid", self.uid), ("gid", self.gid)] {
            if u64::from(id) > MAX_OCTAL_ID {
                return Err(unfit(format!("{what} {id} does not fit a ustar header")));
            }
        }
        if self.mtime > MAX_OCTAL_SIZE {
            return Err(unfit(format!(
                "mtime {} does not fit a ustar header",
                self.mtime
            )));
        }
        for (what, name) in [("user", &self.uname), ("group", &self.gname)] {
            if name.len() > 32 || name.as_bytes().contains(&0) {
                return Err(unfit(format!(
                    "{what} name {name:?} must be at most 32 bytes without NUL"
                )));
            }
        }
        Ok(())
    }
}

/// Checks a member name: non-empty and without NUL bytes (tar would cut it there).
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(unfit("a tar member name cannot be empty".into()));
    }
    if name.contains(&0) {
        return Err(unfit(format!(
            "tar member name {:?} contains a NUL byte",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

/// Writes `value` as zero-padded octal digits filling `field`, except a final NUL.
fn put_octal(field: &mut [u8], mut value: u64) {
    let digits = field.len() - 1;
    field[digits] = 0;
    for slot in field[..digits].iter_mut().rev() {
        *slot = b'0' + (value & 7) as u8;
        value >>= 3;
    }
}

fn put_str(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

fn byte_sum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

/// Splits a long name into ustar `(prefix, name)` if possible.
fn ustar_split(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((&[], name));
    }
    if name.len() > 256 {
        return None;
    }
    // Like tarfile: the first '/' that leaves a prefix of at most 155 bytes
    // and a name of at most 100 bytes.
    name.iter()
        .enumerate()
        .take(156)
        .find(|&(i, &b)| b == b'/' && i > 0 && name.len() - i - 1 <= 100)
        .map(|(i, _)| (&name[..i], &name[i + 1..]))
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

/// One header block with the per-writer fields rendered once.
#[derive(Debug, Clone)]
pub struct HeaderTemplate {
    block: [u8; BLOCK],
    /// Checksum of `block` with the checksum field as spaces and no name/size/prefix.
    base_sum: u64,
    mtime: u64,
}

impl HeaderTemplate {
    /// Renders the fixed fields of `meta` (which must be valid, see [`MemberMeta::validate`]).
    pub fn new(meta: &MemberMeta) -> Result<Self> {
        meta.validate()?;
        let mut b = [0u8; BLOCK];
        put_octal(&mut b[100..108], u64::from(meta.mode));
        put_octal(&mut b[108..116], u64::from(meta.uid));
        put_octal(&mut b[116..124], u64::from(meta.gid));
        put_octal(&mut b[136..148], meta.mtime);
        b[148..156].copy_from_slice(b"        ");
        b[156] = b'0';
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        put_str(&mut b[265..297], meta.uname.as_bytes());
        put_str(&mut b[297..329], meta.gname.as_bytes());
        put_octal(&mut b[329..337], 0);
        put_octal(&mut b[337..345], 0);
        let base_sum = byte_sum(&b);
        Ok(HeaderTemplate {
            block: b,
            base_sum,
            mtime: meta.mtime,
        })
    }

    /// Changes the modification time of later members.
    pub fn set_mtime(&mut self, mtime: u64) -> Result<()> {
        if mtime > MAX_OCTAL_SIZE {
            return Err(unfit(format!("mtime {mtime} does not fit a ustar header")));
        }
        if mtime != self.mtime {
            let old = byte_sum(&self.block[136..148]);
            put_octal(&mut self.block[136..148], mtime);
            self.base_sum = self.base_sum - old + byte_sum(&self.block[136..148]);
            self.mtime = mtime;
        }
        Ok(())
    }

    fn push_block(&self, out: &mut Vec<u8>, name: &[u8], prefix: &[u8], size: u64, typeflag: u8) {
        let start = out.len();
        out.extend_from_slice(&self.block);
        let b = &mut out[start..start + BLOCK];
        put_str(&mut b[0..100], name);
        put_octal(&mut b[124..136], size.min(MAX_OCTAL_SIZE));
        put_str(&mut b[345..500], prefix);
        b[156] = typeflag;
        let mut sum = self.base_sum - u64::from(b'0') + u64::from(typeflag);
        sum += byte_sum(&b[0..100]) + byte_sum(&b[124..136]) + byte_sum(&b[345..500]);
        // Six digits, NUL, space: the layout tarfile and GNU tar use.
        put_octal(&mut b[148..155], sum);
        b[155] = b' ';
    }

    /// Appends the header block(s) of a regular file of `size` bytes named `name`.
    ///
    /// The name must pass [`check_name`].
    pub fn append_header(&self, out: &mut Vec<u8>, name: &[u8], size: u64) {
        let split = ustar_split(name);
        if split.is_none() || size > MAX_OCTAL_SIZE {
            let mut records = Vec::new();
            if split.is_none() {
                records.extend(pax_record("path", name));
            }
            if size > MAX_OCTAL_SIZE {
                records.extend(pax_record("size", size.to_string().as_bytes()));
            }
            self.push_block(out, b"././@PaxHeader", &[], records.len() as u64, b'x');
            out.extend_from_slice(&records);
            append_padding(out, records.len() as u64);
        }
        let (prefix, short) = split.unwrap_or((&[][..], &name[..name.len().min(100)]));
        self.push_block(out, short, prefix, size, b'0');
    }
}

/// Appends the zero padding that follows `size` bytes of member data.
pub fn append_padding(out: &mut Vec<u8>, size: u64) {
    out.extend_from_slice(&ZEROS[..padding(size) as usize]);
}

/// Length of the end-of-archive marker plus record padding after `written` bytes.
pub fn end_of_archive_len(written: u64) -> u64 {
    let end = 2 * BLOCK as u64;
    let total = written + end;
    end + (RECORD_SIZE - total % RECORD_SIZE) % RECORD_SIZE
}

/// Gzip-compresses one member's data (for `.gz` extensions), with a fixed header time.
///
/// Level 9 and a Unix OS byte, as Python's `gzip.compress` writes them; the deflate
/// stream itself depends on the zlib build, so exact bytes need the host's compressor.
pub fn gzip_bytes(data: &[u8], mtime: u32) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(mtime)
        .operating_system(3)
        .write(
            Vec::with_capacity(data.len() / 2 + 64),
            flate2::Compression::best(),
        );
    // Writing into a Vec cannot fail.
    enc.write_all(data).expect("in-memory gzip");
    enc.finish().expect("in-memory gzip")
}

/// Encodes the header block(s) for one regular file.
pub fn encode_header(name: &[u8], size: u64, meta: &MemberMeta) -> Vec<u8> {
    let template = HeaderTemplate::new(meta).unwrap_or_else(|_| {
        // Keep the old lenient behaviour for out-of-range metadata: clamp it.
        let clamped = MemberMeta {
            mode: meta.mode & 0o7777777,
            uid: meta.uid.min(MAX_OCTAL_ID as u32),
            gid: meta.gid.min(MAX_OCTAL_ID as u32),
            uname: String::from_utf8_lossy(&meta.uname.as_bytes()[..meta.uname.len().min(32)])
                .into_owned(),
            gname: String::from_utf8_lossy(&meta.gname.as_bytes()[..meta.gname.len().min(32)])
                .into_owned(),
            mtime: meta.mtime.min(MAX_OCTAL_SIZE),
        };
        HeaderTemplate::new(&clamped).expect("clamped metadata fits")
    });
    let mut out = Vec::with_capacity(BLOCK);
    template.append_header(&mut out, name, size);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::header::{parse_block, parse_number, Block};

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
        // A slash too far right leaves more than 155 bytes of prefix.
        let mut n = vec![b'd'; 200];
        n[170] = b'/';
        assert!(ustar_split(&n).is_none());
    }

    fn checksum_ok(b: &[u8]) -> bool {
        let mut copy = b.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        let want = byte_sum(&copy);
        parse_number(&b[148..156]).unwrap() == want
    }

    #[test]
    fn template_matches_a_freshly_rendered_header() {
        let mut meta = MemberMeta {
            mtime: 1_700_000_000,
            ..MemberMeta::default()
        };
        let mut t = HeaderTemplate::new(&meta).unwrap();
        for mtime in [1_700_000_000u64, 0, 5, MAX_OCTAL_SIZE] {
            t.set_mtime(mtime).unwrap();
            meta.mtime = mtime;
            let fresh = HeaderTemplate::new(&meta).unwrap();
            for (name, size) in [
                (&b"a.txt"[..], 0u64),
                (b"x/y.cls", 512),
                (b"\xc3\xa9.json", 12345),
            ] {
                let mut a = Vec::new();
                t.append_header(&mut a, name, size);
                let mut b = Vec::new();
                fresh.append_header(&mut b, name, size);
                assert_eq!(a, b);
                assert!(checksum_ok(&a));
                match parse_block(a[..BLOCK].try_into().unwrap()).unwrap() {
                    Block::Header(h) => {
                        assert_eq!(h.size, size);
                        assert_eq!(h.name, name);
                    }
                    Block::End => panic!("header parsed as end marker"),
                }
            }
        }
        assert!(t.set_mtime(MAX_OCTAL_SIZE + 1).is_err());
    }

    #[test]
    fn huge_sizes_get_a_pax_size_record() {
        let t = HeaderTemplate::new(&MemberMeta::default()).unwrap();
        let mut out = Vec::new();
        t.append_header(&mut out, b"big.bin", 1 << 34);
        assert_eq!(out[156], b'x');
        let text = String::from_utf8_lossy(&out[BLOCK..2 * BLOCK]);
        assert!(text.contains(&format!("size={}\n", 1u64 << 34)));
        assert!(checksum_ok(&out[out.len() - BLOCK..]));
    }

    #[test]
    fn long_names_get_a_valid_pax_header() {
        let t = HeaderTemplate::new(&MemberMeta::default()).unwrap();
        let name = vec![b'n'; 300];
        let mut out = Vec::new();
        t.append_header(&mut out, &name, 3);
        out.extend_from_slice(b"abc");
        append_padding(&mut out, 3);
        assert_eq!(out.len(), 4 * BLOCK);
        assert_eq!(out[156], b'x');
        assert!(checksum_ok(&out[..BLOCK]));
        assert!(checksum_ok(&out[2 * BLOCK..3 * BLOCK]));
        assert_eq!(&out[3 * BLOCK..3 * BLOCK + 3], b"abc");
    }

    #[test]
    fn validation_rejects_what_would_be_truncated() {
        assert!(check_name(b"").is_err());
        assert!(check_name(b"a\0b.txt").is_err());
        assert!(check_name(b"a.txt").is_ok());
        let meta = MemberMeta {
            uname: "u".repeat(33),
            ..MemberMeta::default()
        };
        assert!(HeaderTemplate::new(&meta).is_err());
        let meta = MemberMeta {
            mtime: MAX_OCTAL_SIZE + 1,
            ..MemberMeta::default()
        };
        assert!(meta.validate().is_err());
    }

    #[test]
    fn gzip_bytes_round_trips_and_is_reproducible() {
        use std::io::Read;
        let data = b"hello hello hello hello".repeat(100);
        let a = gzip_bytes(&data, 7);
        assert_eq!(a, gzip_bytes(&data, 7));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn end_of_archive_pads_to_a_record() {
        for written in [0u64, 512, 1024, 9216, 10240, 123 * 512] {
            let end = end_of_archive_len(written);
            assert!(end >= 1024);
            assert_eq!((written + end) % RECORD_SIZE, 0);
        }
    }
}
