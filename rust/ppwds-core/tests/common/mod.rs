//! Tar builders shared by the integration tests.

use ppwds_core::tar::{MemberMeta, TarBuilder};

/// A tar of regular files written by the crate's own writer.
pub fn build(members: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut b = TarBuilder::new(Vec::new());
    let meta = MemberMeta::default();
    for (n, d) in members {
        b.append(n, d, &meta).unwrap();
    }
    b.finish().unwrap()
}

/// Recomputes a header block's checksum after a test edited it.
pub fn fix_checksum(block: &mut [u8]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}
