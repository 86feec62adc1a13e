//! Turning `--input` arguments (folders, glob patterns, list files, image files) into one
//! ordered list of image paths, and splitting that list into shards.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::error::{DatasetError, Result};

/// File extensions taken from folders (case-insensitive). Glob patterns and list files take
/// whatever they name.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Whether `spec` names many images rather than one file: a folder, a glob pattern, or a
/// `.txt` list with one path per line.
pub fn is_collection(spec: &Path) -> bool {
    spec.is_dir() || is_list_file(spec) || is_glob(spec)
}

fn is_list_file(spec: &Path) -> bool {
    spec.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
}

fn is_glob(spec: &Path) -> bool {
    !spec.exists() && spec.to_str().is_some_and(|s| s.contains(['*', '?', '[']))
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Lists the images `specs` name, in a recorded order: the specs in the order given; a
/// folder's images (recursively, by extension) sorted by path; a glob's matches sorted by path;
/// a list file's lines in file order (blank lines and `#` comments skipped, relative paths taken
/// from the list's folder). A path named twice is kept once, at its first place. Paths a list
/// names are not checked here: a missing file becomes a failed row of the index.
pub fn list_images(specs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut seen = HashSet::new();
    let mut images = Vec::new();
    for spec in specs {
        for path in list_one(spec)? {
            if seen.insert(path.clone()) {
                images.push(path);
            }
        }
    }
    if images.is_empty() {
        let inputs = specs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DatasetError::NoImages { inputs });
    }
    Ok(images)
}

fn list_one(spec: &Path) -> Result<Vec<PathBuf>> {
    let fail = |reason: String| DatasetError::Listing {
        path: spec.to_path_buf(),
        reason,
    };
    if spec.is_dir() {
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(spec).follow_links(true) {
            let entry = entry.map_err(|e| fail(e.to_string()))?;
            if entry.file_type().is_file() && has_image_extension(entry.path()) {
                found.push(entry.into_path());
            }
        }
        found.sort();
        Ok(found)
    } else if is_list_file(spec) {
        let text = std::fs::read_to_string(spec).map_err(|e| fail(e.to_string()))?;
        let base = spec.parent().unwrap_or(Path::new(""));
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| base.join(l))
            .collect())
    } else if is_glob(spec) {
        let pattern = spec.to_str().unwrap_or_default();
        let paths = glob::glob(pattern).map_err(|e| fail(e.to_string()))?;
        let mut found = Vec::new();
        for path in paths {
            let path = path.map_err(|e| fail(e.to_string()))?;
            if path.is_file() {
                found.push(path);
            }
        }
        found.sort();
        Ok(found)
    } else if spec.exists() {
        Ok(vec![spec.to_path_buf()])
    } else {
        Err(fail("no such file or folder".into()))
    }
}

/// A fingerprint of an ordered image list, so that shards and resumed runs can check they saw
/// the same input.
pub fn listing_digest(images: &[PathBuf]) -> String {
    let mut hash = Sha256::new();
    for path in images {
        hash.update(path.to_string_lossy().as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One of `count` deterministic slices of the image list (`--shard I/N`): shard `index` takes
/// the contiguous block `len*I/N .. len*(I+1)/N`, so shards 0..N-1 in order are exactly the
/// whole list in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// Which slice, from 0.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl Shard {
    /// The whole list as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The positions this shard takes from a list of `len` images.
    pub fn range(self, len: usize) -> Range<usize> {
        let bound = |i: usize| ((len as u128 * i as u128) / self.count as u128) as usize;
        bound(self.index)..bound(self.index + 1)
    }

    /// The prefix of this shard's file names (`shard-2-of-8.`), empty for the whole list.
    pub fn file_prefix(self) -> String {
        if self.count == 1 {
            String::new()
        } else {
            format!("shard-{}-of-{}.", self.index, self.count)
        }
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ALL
    }
}

impl FromStr for Shard {
    type Err = DatasetError;

    fn from_str(s: &str) -> Result<Self> {
        let fail = |reason: &str| DatasetError::Shard {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| fail("expected I/N, e.g. 0/4"))?;
        let index: usize = i.trim().parse().map_err(|_| fail("I is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| fail("N is not a number"))?;
        if count == 0 {
            return Err(fail("N must be at least 1"));
        }
        if index >= count {
            return Err(fail("I counts from 0 and must be below N"));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_list_exactly_once_in_order() {
        for len in [0, 1, 7, 300, 1001] {
            for count in 1..=9 {
                let mut next = 0;
                for index in 0..count {
                    let r = Shard { index, count }.range(len);
                    assert_eq!(r.start, next, "len {len} shard {index}/{count}");
                    assert!(r.len() <= len / count + 1);
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn shard_specs_parse_or_say_why_not() {
        assert_eq!(
            "2/8".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 8 }
        );
        for bad in ["8/8", "1/0", "x/2", "3", "-1/2"] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn folders_lists_and_globs_are_listed_in_recorded_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("b")).unwrap();
        for name in ["b/2.png", "a.JPG", "b/1.jpeg", "notes.md", "c.webp"] {
            std::fs::write(root.join(name), b"x").unwrap();
        }
        let folder = list_images(&[root.to_path_buf()]).unwrap();
        let names: Vec<_> = folder
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.JPG", "b/1.jpeg", "b/2.png", "c.webp"]);

        std::fs::write(
            root.join("list.txt"),
            "# chosen\nc.webp\n\nb/1.jpeg\nc.webp\n",
        )
        .unwrap();
        let listed = list_images(&[root.join("list.txt")]).unwrap();
        assert_eq!(listed, [root.join("c.webp"), root.join("b/1.jpeg")]);

        let globbed = list_images(&[root.join("b/*.png"), root.join("*.webp")]).unwrap();
        assert_eq!(globbed, [root.join("b/2.png"), root.join("c.webp")]);

        let err = list_images(&[root.join("*.gif")]).unwrap_err();
        assert!(matches!(err, DatasetError::NoImages { .. }), "{err}");
        let err = list_images(&[root.join("missing")]).unwrap_err();
        assert!(matches!(err, DatasetError::Listing { .. }), "{err}");
    }
}
