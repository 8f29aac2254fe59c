//! How member names map to sample keys and extensions (webdataset 1.0.2 rules).

/// Splits a member name into `(key, extension)` byte ranges.
///
/// Same result as the regex `^((?:.*/|)[^.]+)[.]([^/]*)$`: the key is the
/// directory part plus the basename up to its first dot, the extension is the
/// rest. Returns the key length (the extension starts one byte later), or
/// `None` when the name has no usable split (such members are dropped).
pub fn split_key(name: &[u8]) -> Option<usize> {
    // Candidate prefixes, longest first, as a backtracking regex engine tries them.
    let slashes = name
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'/')
        .map(|(i, _)| i + 1);
    let mut starts: Vec<usize> = slashes.collect();
    starts.reverse();
    starts.push(0);
    for start in starts {
        let rest = &name[start..];
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            continue;
        };
        if dot == 0 {
            continue;
        }
        if rest[dot + 1..].contains(&b'/') {
            continue;
        }
        return Some(start + dot);
    }
    None
}

/// True for metadata members that are never part of a sample: top-level
/// `__name__` files and anything under a `__dir__/` first component.
pub fn is_meta(name: &[u8]) -> bool {
    let first = match name.iter().position(|&b| b == b'/') {
        Some(p) => &name[..p],
        None => {
            if name.starts_with(b"__") && name.ends_with(b"__") {
                return true;
            }
            name
        }
    };
    first.len() >= 4 && first.starts_with(b"__") && first.ends_with(b"__")
}

/// Lower-cases an extension like Python's `str.lower()` (ASCII fast path).
pub fn lower_ext(ext: &[u8]) -> Vec<u8> {
    if ext.is_ascii() {
        return ext.to_ascii_lowercase();
    }
    match std::str::from_utf8(ext) {
        Ok(s) => s.to_lowercase().into_bytes(),
        Err(_) => ext.to_ascii_lowercase(),
    }
}

/// Splits a member name into key and extension the way wids does.
///
/// wids uses the regex `^((?:.*/)?.*?)(\..*)$`: the key runs up to the first dot of the
/// basename and the extension keeps that dot. When the basename has no dot, the regex
/// backtracks into the directories, so `a.b/c` gives key `a` and extension `.b/c`
/// (webdataset drops such a member). Names without any dot are skipped.
///
/// Returns the key length; the extension is the rest of the name, starting with the dot.
pub fn wids_split(name: &[u8]) -> Option<usize> {
    // Usual case: a dot in the basename. Here wids and webdataset's `split_key` agree
    // (a property test checks it); only the fallback below is wids-specific.
    let base = name.iter().rposition(|&b| b == b'/').map_or(0, |p| p + 1);
    if let Some(dot) = name[base..].iter().position(|&b| b == b'.') {
        return Some(base + dot);
    }
    // No dot in the basename: the regex backtracks to the longest directory prefix that
    // still has a dot after it, then takes the first dot after that prefix.
    let last_dot = name[..base].iter().rposition(|&b| b == b'.')?;
    let start = name[..last_dot]
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |p| p + 1);
    let dot = name[start..].iter().position(|&b| b == b'.')?;
    Some(start + dot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(name: &str) -> Option<(String, String)> {
        let k = split_key(name.as_bytes())?;
        Some((name[..k].to_string(), name[k + 1..].to_string()))
    }

    #[test]
    fn compat_table() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("a.jpg", Some(("a", "jpg"))),
            ("a.seg.jpg", Some(("a", "seg.jpg"))),
            ("dir.x/a.jpg", Some(("dir.x/a", "jpg"))),
            ("x/y/z.tar.gz", Some(("x/y/z", "tar.gz"))),
            (
                "235342 Track 2.0 (Clean).mp3",
                Some(("235342 Track 2", "0 (Clean).mp3")),
            ),
            (
                "2024-01-01T10:00:00.123.jpg",
                Some(("2024-01-01T10:00:00", "123.jpg")),
            ),
            ("noext", None),
            ("dir/noext", None),
            (".hidden", None),
            ("a/b.c/d", None),
            ("dir/.hidden", Some(("dir/", "hidden"))),
            ("a.", Some(("a", ""))),
            ("A.JPG", Some(("A", "JPG"))),
            ("a._meta", Some(("a", "_meta"))),
            ("x.__weird", Some(("x", "__weird"))),
            ("a.b/.c", None),
            ("x/y/.z", Some(("x/y/", "z"))),
        ];
        for (name, want) in cases {
            let got = split(name);
            let want = want.map(|(k, e)| (k.to_string(), e.to_string()));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn meta_names() {
        for m in ["__meta__", "__", "___", "__index__/x.txt", "__a__/b/c"] {
            assert!(is_meta(m.as_bytes()), "{m}");
        }
        for m in ["a.txt", "__a", "a/__b__", "__a__b/x", "x__", "___/x"] {
            assert!(!is_meta(m.as_bytes()), "{m}");
        }
    }

    #[test]
    fn lowercase() {
        assert_eq!(lower_ext(b"JPG"), b"jpg");
        assert_eq!(lower_ext("ÄB".as_bytes()), "äb".as_bytes());
        assert_eq!(lower_ext(b"A\xff"), b"a\xff");
    }
}
