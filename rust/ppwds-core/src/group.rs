//! Grouping consecutive members into samples (adjacent keys only).
//!
//! Extensions are interned per shard: members carry a small id, so the hot
//! path allocates once per sample (the key), not once per member.

use std::collections::HashMap;

use crate::keys::split_key;

/// One sample: a key and its members, in archive order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample<T> {
    /// The sample key (directory + basename up to the first dot).
    pub key: Vec<u8>,
    /// `(extension id, payload)` pairs; see [`Grouper::ext`].
    pub members: Vec<(u32, T)>,
}

/// Why a member could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The name has no key/extension split; the member is dropped.
    NoKey,
    /// The current sample already has this extension.
    Duplicate {
        /// Key of the current sample.
        key: Vec<u8>,
        /// The repeated (lower-cased) extension.
        ext: Vec<u8>,
    },
}

/// A member accepted by [`Grouper::check`], ready for [`Grouper::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// True when the member starts a new sample.
    pub new_sample: bool,
    /// Length of the key prefix of the name.
    pub key_len: usize,
    /// Interned extension.
    pub ext: u32,
}

/// Builds samples from a member stream, one shard at a time.
#[derive(Debug)]
pub struct Grouper<T> {
    current: Option<Sample<T>>,
    lcase: bool,
    ids: HashMap<Vec<u8>, u32>,
    names: Vec<Vec<u8>>,
    scratch: Vec<u8>,
    /// Id of the empty extension of member mode, looked up once: comparing empty keys
    /// in the map costs a memcmp on a dangling pointer, slow with AVX-512 masked loads.
    whole_ext: Option<u32>,
}

impl<T> Default for Grouper<T> {
    fn default() -> Self {
        Grouper::new(true)
    }
}

impl<T> Grouper<T> {
    /// A grouper; `lcase` lower-cases extensions (webdataset's default).
    pub fn new(lcase: bool) -> Self {
        Grouper {
            current: None,
            lcase,
            ids: HashMap::new(),
            names: Vec::new(),
            scratch: Vec::new(),
            whole_ext: None,
        }
    }

    /// The (lower-cased) extension with this id.
    pub fn ext(&self, id: u32) -> &[u8] {
        &self.names[id as usize]
    }

    /// Number of distinct extensions seen so far.
    pub fn ext_count(&self) -> usize {
        self.names.len()
    }

    fn intern(&mut self, ext: &[u8]) -> u32 {
        let needs_lower = self.lcase && (!ext.is_ascii() || ext.iter().any(u8::is_ascii_uppercase));
        let ext: &[u8] = if needs_lower {
            self.scratch = crate::keys::lower_ext(ext);
            &self.scratch
        } else {
            ext
        };
        if let Some(&id) = self.ids.get(ext) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(ext.to_vec());
        self.ids.insert(ext.to_vec(), id);
        id
    }

    /// Splits `name` and checks it against the sample in progress.
    pub fn check(&mut self, name: &[u8]) -> Result<Split, Rejected> {
        let k = split_key(name).ok_or(Rejected::NoKey)?;
        let ext = self.intern(&name[k + 1..]);
        let same = matches!(&self.current, Some(cur) if cur.key == name[..k]);
        if same {
            if let Some(cur) = &self.current {
                if cur.members.iter().any(|(e, _)| *e == ext) {
                    return Err(Rejected::Duplicate {
                        key: name[..k].to_vec(),
                        ext: self.names[ext as usize].clone(),
                    });
                }
            }
        }
        Ok(Split {
            new_sample: !same,
            key_len: k,
            ext,
        })
    }

    /// Member mode: `name` as a sample of its own, whatever its shape (the whole name is
    /// the key, the extension is empty).
    pub fn whole(&mut self, name: &[u8]) -> Split {
        let ext = match self.whole_ext {
            Some(id) => id,
            None => {
                let id = self.intern(b"");
                self.whole_ext = Some(id);
                id
            }
        };
        Split {
            new_sample: true,
            key_len: name.len(),
            ext,
        }
    }

    /// Adds a member checked by [`Grouper::check`] (or [`Grouper::whole`]); returns the
    /// sample it completed, if any.
    pub fn push(&mut self, name: &[u8], split: Split, data: T) -> Option<Sample<T>> {
        match self.add(split, data) {
            Ok(()) => None,
            Err(data) => {
                let whole = name.len() == split.key_len;
                self.start(name[..split.key_len].to_vec(), whole, split.ext, data)
            }
        }
    }

    /// [`Grouper::push`] for a name the caller gives away: a new sample keeps its
    /// allocation as the key instead of copying it.
    pub fn push_owned(&mut self, mut name: Vec<u8>, split: Split, data: T) -> Option<Sample<T>> {
        match self.add(split, data) {
            Ok(()) => None,
            Err(data) => {
                let whole = name.len() == split.key_len;
                name.truncate(split.key_len);
                self.start(name, whole, split.ext, data)
            }
        }
    }

    /// Adds to the current sample, or hands `data` back when the member starts a new one.
    fn add(&mut self, split: Split, data: T) -> Result<(), T> {
        match self.current.as_mut() {
            Some(cur) if !split.new_sample => {
                cur.members.push((split.ext, data));
                Ok(())
            }
            _ => Err(data),
        }
    }

    /// Starts a sample; `whole`: the key is the entire name (member mode: one member).
    fn start(&mut self, key: Vec<u8>, whole: bool, ext: u32, data: T) -> Option<Sample<T>> {
        let done = self.current.take();
        let mut members = Vec::with_capacity(if whole { 1 } else { 4 });
        members.push((ext, data));
        self.current = Some(Sample { key, members });
        done
    }

    /// Ends the shard: returns the last sample.
    pub fn finish(&mut self) -> Option<Sample<T>> {
        self.current.take()
    }

    /// Drops the sample in progress (after a shard error: it may be incomplete).
    pub fn discard(&mut self) {
        self.current = None;
    }

    /// True while a sample is being built.
    pub fn has_current(&self) -> bool {
        self.current.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(g: &mut Grouper<i32>, name: &str, d: i32) -> Result<Option<Sample<i32>>, Rejected> {
        let split = g.check(name.as_bytes())?;
        Ok(g.push(name.as_bytes(), split, d))
    }

    #[test]
    fn adjacent_grouping() {
        let mut g = Grouper::new(true);
        let mut out = vec![];
        for (n, d) in [
            ("a.jpg", 1),
            ("a.CLS", 2),
            ("b.jpg", 3),
            ("a.jpg", 4),
            ("noext", 5),
        ] {
            match add(&mut g, n, d) {
                Ok(Some(s)) => out.push(s),
                Ok(None) | Err(Rejected::NoKey) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        out.extend(g.finish());
        let keys: Vec<_> = out
            .iter()
            .map(|s| String::from_utf8(s.key.clone()).unwrap())
            .collect();
        assert_eq!(keys, ["a", "b", "a"]);
        let exts: Vec<_> = out[0]
            .members
            .iter()
            .map(|(e, d)| (g.ext(*e).to_vec(), *d))
            .collect();
        assert_eq!(exts, vec![(b"jpg".to_vec(), 1), (b"cls".to_vec(), 2)]);
    }

    #[test]
    fn duplicate_extension_rejected() {
        let mut g = Grouper::new(true);
        add(&mut g, "a.jpg", 1).unwrap();
        assert_eq!(
            add(&mut g, "a.JPG", 2),
            Err(Rejected::Duplicate {
                key: b"a".to_vec(),
                ext: b"jpg".to_vec()
            })
        );
        // The sample is still intact after the rejection.
        add(&mut g, "a.txt", 3).unwrap();
        assert_eq!(g.finish().unwrap().members.len(), 2);
    }

    #[test]
    fn unicode_extensions_are_lowercased() {
        let mut g: Grouper<i32> = Grouper::new(true);
        let s = g.check("k.ÄB".as_bytes()).unwrap();
        assert_eq!(g.ext(s.ext), "äb".as_bytes());
    }
}
