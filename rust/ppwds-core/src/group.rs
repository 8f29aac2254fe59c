//! Grouping consecutive members into samples (adjacent keys only).

use crate::keys::{lower_ext, split_key};

/// One sample: a key and its members, in archive order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample<T> {
    /// The sample key (directory + basename up to the first dot).
    pub key: Vec<u8>,
    /// `(extension, payload)` pairs.
    pub members: Vec<(Vec<u8>, T)>,
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

/// Builds samples from a member stream, one shard at a time.
#[derive(Debug)]
pub struct Grouper<T> {
    current: Option<Sample<T>>,
    lcase: bool,
}

impl<T> Default for Grouper<T> {
    fn default() -> Self {
        Grouper::new(true)
    }
}

impl<T> Grouper<T> {
    /// A grouper; `lcase` lower-cases extensions (webdataset's default).
    pub fn new(lcase: bool) -> Self {
        Grouper { current: None, lcase }
    }

    /// Checks a name and returns its `(key, ext)` split without adding anything.
    pub fn split(&self, name: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let k = split_key(name)?;
        let ext = &name[k + 1..];
        let ext = if self.lcase { lower_ext(ext) } else { ext.to_vec() };
        Some((name[..k].to_vec(), ext))
    }

    /// Checks whether adding `name` would be accepted, before its data is read.
    pub fn check(&self, name: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Rejected> {
        let (key, ext) = self.split(name).ok_or(Rejected::NoKey)?;
        if let Some(cur) = &self.current {
            if cur.key == key && cur.members.iter().any(|(e, _)| *e == ext) {
                return Err(Rejected::Duplicate { key, ext });
            }
        }
        Ok((key, ext))
    }

    /// Adds a member already split by [`Grouper::check`]; returns the sample it completed, if any.
    pub fn push_split(&mut self, key: Vec<u8>, ext: Vec<u8>, data: T) -> Option<Sample<T>> {
        let same = matches!(&self.current, Some(cur) if cur.key == key);
        if same {
            if let Some(cur) = self.current.as_mut() {
                cur.members.push((ext, data));
            }
            return None;
        }
        let done = self.current.take();
        self.current = Some(Sample {
            key,
            members: vec![(ext, data)],
        });
        done
    }

    /// Adds a member by name; returns the sample it completed, if any.
    pub fn push(&mut self, name: &[u8], data: T) -> Result<Option<Sample<T>>, Rejected> {
        let (key, ext) = self.check(name)?;
        Ok(self.push_split(key, ext, data))
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

    #[test]
    fn adjacent_grouping() {
        let mut g = Grouper::new(true);
        let mut out = vec![];
        for (n, d) in [("a.jpg", 1), ("a.CLS", 2), ("b.jpg", 3), ("a.jpg", 4), ("noext", 5)] {
            match g.push(n.as_bytes(), d) {
                Ok(Some(s)) => out.push(s),
                Ok(None) | Err(Rejected::NoKey) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        out.extend(g.finish());
        let keys: Vec<_> = out.iter().map(|s| String::from_utf8(s.key.clone()).unwrap()).collect();
        assert_eq!(keys, ["a", "b", "a"]);
        assert_eq!(out[0].members, vec![(b"jpg".to_vec(), 1), (b"cls".to_vec(), 2)]);
    }

    #[test]
    fn duplicate_extension_rejected() {
        let mut g = Grouper::new(true);
        g.push(b"a.jpg", 1).unwrap();
        assert_eq!(
            g.push(b"a.JPG", 2),
            Err(Rejected::Duplicate {
                key: b"a".to_vec(),
                ext: b"jpg".to_vec()
            })
        );
        // The sample is still intact after the rejection.
        g.push(b"a.txt", 3).unwrap();
        assert_eq!(g.finish().unwrap().members.len(), 2);
    }
}
