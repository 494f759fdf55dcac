//! A `newc` cpio archive, the format the kernel unpacks as an initramfs
//! (`init/initramfs.c`, `Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! The guest's initramfs holds a handful of entries (the static binary, the
//! scenarios, the plan, a few directories and `/dev/console`), so a small
//! writer of our own does; no compression: the kernel reads an uncompressed
//! archive directly, and the whole archive is a few megabytes.
//!
//! Each entry is the magic `070701`, thirteen 8-digit hex fields, the name
//! with its NUL, padding to a multiple of 4, the data, padding to a multiple
//! of 4. The archive ends with an entry named `TRAILER!!!`.

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

/// An archive being built in memory.
#[derive(Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
}

impl Archive {
    pub fn new() -> Archive {
        Archive { bytes: Vec::new(), next_ino: 1 }
    }

    /// A directory (`name` without a leading `/`).
    pub fn dir(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, 2, (0, 0), &[]);
    }

    /// A regular file with permission bits `perm` (e.g. `0o755`).
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, S_IFREG | (perm & 0o7777), 1, (0, 0), data);
    }

    /// A character device, e.g. `dev/console` (5, 1): without it the
    /// kernel starts `/init` with no standard streams.
    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | (perm & 0o7777), 1, (major, minor), &[]);
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        self.bytes
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        let ino = if name == "TRAILER!!!" { 0 } else { self.next_ino };
        self.next_ino += 1;
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: reproducible archives
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check: unused by newc (070701)
        ];
        self.bytes.extend_from_slice(b"070701");
        for f in fields {
            self.bytes.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads an archive back: (name, mode, rdev, data) per entry, trailer
    /// excluded; panics on a malformed one.
    /// (name, mode, rdev, data).
    type Entry = (String, u32, (u32, u32), Vec<u8>);

    fn read(mut b: &[u8]) -> Vec<Entry> {
        let mut out = Vec::new();
        let total = b.len();
        loop {
            assert_eq!((total - b.len()) % 4, 0, "entry not aligned");
            assert_eq!(&b[..6], b"070701");
            let field =
                |i: usize| u32::from_str_radix(std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap();
            let (mode, size, rmaj, rmin, namesize) =
                (field(1), field(6) as usize, field(9), field(10), field(11) as usize);
            let name = std::str::from_utf8(&b[110..110 + namesize - 1]).unwrap().to_string();
            assert_eq!(b[110 + namesize - 1], 0, "name not NUL-terminated");
            let data_at = (110 + namesize).div_ceil(4) * 4;
            let data = b[data_at..data_at + size].to_vec();
            b = &b[(data_at + size).div_ceil(4) * 4..];
            if name == "TRAILER!!!" {
                assert!(b.is_empty(), "bytes after the trailer");
                return out;
            }
            out.push((name, mode, (rmaj, rmin), data));
        }
    }

    #[test]
    fn entries_read_back_aligned_with_their_modes_and_data() {
        let mut a = Archive::new();
        a.dir("dev");
        a.char_device("dev/console", 0o600, 5, 1);
        a.file("init", 0o755, b"\x7fELF and some");
        a.file("scenarios/a.tree", 0o644, b"tree:\n  init\n");
        let bytes = a.finish();
        assert_eq!(bytes.len() % 4, 0);
        let entries = read(&bytes);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].0, "dev");
        assert_eq!(entries[0].1, 0o040_755);
        assert_eq!(entries[1], ("dev/console".into(), 0o020_600, (5, 1), vec![]));
        assert_eq!(entries[2], ("init".into(), 0o100_755, (0, 0), b"\x7fELF and some".to_vec()));
        assert_eq!(entries[3].3, b"tree:\n  init\n");
    }

    #[test]
    fn the_header_is_the_documented_one() {
        // An empty file named "a": 110-byte header, "a\0", 0 data bytes.
        let mut a = Archive::new();
        a.file("a", 0o644, b"");
        let b = a.finish();
        let header = std::str::from_utf8(&b[..110]).unwrap();
        let fields = [
            "00000001", // ino
            "000081A4", // mode: regular file, 0644
            "00000000", "00000000", // uid, gid
            "00000001", // nlink
            "00000000", "00000000", // mtime, filesize
            "00000000", "00000000", "00000000", "00000000", // dev and rdev major, minor
            "00000002", // namesize, NUL included
            "00000000", // check
        ];
        assert_eq!(header, format!("070701{}", fields.concat()));
        assert_eq!(&b[110..112], b"a\0");
    }
}
