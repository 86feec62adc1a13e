//! The size of the CPU's level-2 cache, read once at run time, for the kernels that size their
//! working blocks to it (Winograd's tile blocks) instead of to a constant tuned on one machine.
//!
//! Read from Linux's sysfs (`/sys/devices/system/cpu/cpu0/cache/index*/`), which reports what
//! the CPU itself does (CPUID leaf 4 on Intel, 0x8000_001D on AMD, the device tree on ARM)
//! without per-vendor code. Elsewhere, or where sysfs says nothing, the 1 MiB of the smallest
//! current x86 server cores' L2 is assumed.

use std::path::Path;
use std::sync::OnceLock;

/// The L2 size assumed where none can be read.
const FALLBACK_L2_BYTES: usize = 1 << 20;

/// Bytes of level-2 cache per core (of the first CPU).
pub(super) fn l2_bytes() -> usize {
    static L2: OnceLock<usize> = OnceLock::new();
    *L2.get_or_init(|| {
        read_l2(Path::new("/sys/devices/system/cpu/cpu0/cache")).unwrap_or(FALLBACK_L2_BYTES)
    })
}

/// The size of the unified or data level-2 cache listed under `dir` (sysfs's `index*`
/// folders: `level` "2", `type` "Unified" or "Data", `size` like "2048K").
fn read_l2(dir: &Path) -> Option<usize> {
    let read = |index: &Path, name: &str| std::fs::read_to_string(index.join(name)).ok();
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|index| read(index, "level").is_some_and(|l| l.trim() == "2"))
        .filter(|index| read(index, "type").is_some_and(|t| t.trim() != "Instruction"))
        .find_map(|index| parse_size(&read(&index, "size")?))
}

/// `"2048K"`, `"1M"` or a plain byte count, in bytes; `None` for zero or anything else.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.strip_suffix(['K', 'k']) {
        Some(digits) => (digits, 1 << 10),
        None => match text.strip_suffix(['M', 'm']) {
            Some(digits) => (digits, 1 << 20),
            None => (text, 1),
        },
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_size("2048K\n"), Some(2 << 20));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("524288"), Some(524288));
        assert_eq!(parse_size("0K"), None);
        assert_eq!(parse_size("big"), None);
    }

    /// The level-2 data or unified cache is found among the `index*` folders, the
    /// instruction caches and other levels skipped; a folder without one gives nothing.
    #[test]
    fn the_level_two_cache_is_found_among_the_others() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for (index, level, kind, size) in [
            ("index0", "1", "Data", "48K"),
            ("index1", "1", "Instruction", "32K"),
            ("index2", "2", "Unified", "2048K"),
            ("index3", "3", "Unified", "105M"),
        ] {
            let path = dir.path().join(index);
            std::fs::create_dir(&path).expect("a folder");
            for (name, text) in [("level", level), ("type", kind), ("size", size)] {
                std::fs::write(path.join(name), format!("{text}\n")).expect("a file");
            }
        }
        assert_eq!(read_l2(dir.path()), Some(2 << 20));
        assert_eq!(read_l2(&dir.path().join("index0")), None);
        assert!(l2_bytes() > 0);
    }
}
