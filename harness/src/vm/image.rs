//! What `reparent vm` checks before it boots anything: that the kernel is
//! an x86 boot image, and that the binary it packs runs without a dynamic
//! loader (the initramfs holds nothing else).

use std::path::{Path, PathBuf};

/// Why a file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} is not a bootable x86 kernel image (no \"HdrS\" boot header at byte 0x202): give a bzImage \
         (arch/x86/boot/bzImage of a kernel build) or a distribution's /boot/vmlinuz-*; ci/kernels fetches Debian's"
    )]
    NotAKernel { path: PathBuf },
    #[error("{path} is not an ELF executable")]
    NotElf { path: PathBuf },
    #[error("{path} is dynamically linked (it names an ELF interpreter), and the guest has no libc: {HOW_TO_BUILD}")]
    Dynamic { path: PathBuf },
    #[error("no static build of reparent found (looked at: {looked}): {HOW_TO_BUILD}, or give --static-binary PATH")]
    NoStaticBuild { looked: String },
}

/// How to get the static binary.
pub const HOW_TO_BUILD: &str = "build a static one with `cargo build --profile guest` (static with glibc \
                                through .cargo/config.toml; or with musl: `rustup target add \
                                x86_64-unknown-linux-musl` then `cargo build --release --target \
                                x86_64-unknown-linux-musl`)";

/// Checks the x86 boot protocol header: the magic `HdrS` at 0x202
/// (`Documentation/arch/x86/boot.rst`).
pub fn check_kernel(path: &Path) -> Result<(), ImageError> {
    let bytes = read_head(path, 0x210)?;
    if bytes.get(0x202..0x206) == Some(b"HdrS") {
        Ok(())
    } else {
        Err(ImageError::NotAKernel { path: path.to_path_buf() })
    }
}

/// Checks that `path` is an ELF executable without `PT_INTERP` (static or
/// static-pie).
pub fn check_static(path: &Path) -> Result<(), ImageError> {
    let b = std::fs::read(path).map_err(|source| ImageError::Read { path: path.to_path_buf(), source })?;
    match elf_interp(&b) {
        None => Err(ImageError::NotElf { path: path.to_path_buf() }),
        Some(true) => Err(ImageError::Dynamic { path: path.to_path_buf() }),
        Some(false) => Ok(()),
    }
}

/// For a 64-bit little-endian ELF file: whether a program header is
/// `PT_INTERP`; `None` when it is not such a file.
fn elf_interp(b: &[u8]) -> Option<bool> {
    if b.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)? as usize, u16_at(0x38)? as usize);
    const PT_INTERP: u32 = 3;
    let mut interp = false;
    for i in 0..phnum {
        interp |= u32_at(phoff.checked_add(i.checked_mul(phentsize)?)?)? == PT_INTERP;
    }
    Some(interp)
}

fn read_head(path: &Path, n: usize) -> Result<Vec<u8>, ImageError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|source| ImageError::Read { path: path.to_path_buf(), source })?;
    let mut buf = Vec::with_capacity(n);
    f.by_ref()
        .take(n as u64)
        .read_to_end(&mut buf)
        .map_err(|source| ImageError::Read { path: path.to_path_buf(), source })?;
    Ok(buf)
}

/// Where the static build is looked for when `--static-binary` is not
/// given, smallest first: next to the running binary (`reparent-static`);
/// the `guest` profile's build beside the running binary's profile
/// directory (`target/<target>/release/reparent` →
/// `target/<target>/guest/reparent`: static, stripped); the musl build in
/// the same target directory (`target/x86_64-unknown-linux-musl/release/reparent`),
/// whose debug info `.cargo/config.toml` strips; the same two under the
/// current directory; and last the running binary itself, which on Linux
/// with glibc is static too (`.cargo/config.toml`) but carries its debug
/// info: 40 MB instead of 6 in every guest's initramfs.
pub fn static_candidates(running: &Path) -> Vec<PathBuf> {
    const MUSL: &str = "x86_64-unknown-linux-musl/release/reparent";
    let mut c = Vec::new();
    let add = |p: PathBuf, c: &mut Vec<PathBuf>| {
        if !c.contains(&p) {
            c.push(p);
        }
    };
    if let Some(dir) = running.parent() {
        add(dir.join("reparent-static"), &mut c);
        if let Some(profiles) = dir.parent() {
            add(profiles.join("guest/reparent"), &mut c);
        }
        // target/release → target; target/<triple>/release → target.
        for target in dir.ancestors().skip(1).take(2) {
            if target.file_name().is_some_and(|n| n == "target") {
                add(target.join(MUSL), &mut c);
            }
        }
    }
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    add(PathBuf::from("target").join(host).join("guest/reparent"), &mut c);
    add(PathBuf::from("target").join(MUSL), &mut c);
    add(running.to_path_buf(), &mut c);
    c
}

/// The first static candidate, or which were tried.
pub fn find_static(running: &Path) -> Result<PathBuf, ImageError> {
    let candidates = static_candidates(running);
    for p in &candidates {
        if p.is_file() && check_static(p).is_ok() {
            return Ok(p.clone());
        }
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(ImageError::NoStaticBuild { looked: looked.join(", ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(phdrs: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 0x40 + 56 * phdrs.len()];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, t) in phdrs.iter().enumerate() {
            b[0x40 + 56 * i..0x44 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        b
    }

    #[test]
    fn an_interpreter_makes_a_binary_dynamic() {
        assert_eq!(elf_interp(&elf(&[6, 1, 1, 2])), Some(false), "PT_PHDR, LOAD, LOAD, DYNAMIC: static-pie");
        assert_eq!(elf_interp(&elf(&[6, 3, 1])), Some(true));
        assert_eq!(elf_interp(b"#!/bin/sh\n"), None);
        let mut cut = elf(&[1, 3]);
        cut.truncate(0x40 + 56 + 2); // the second header's p_type cut in half
        assert_eq!(elf_interp(&cut), None, "a truncated header is not an ELF file we can judge");
    }

    #[test]
    fn this_test_binary_is_judged_by_how_it_was_linked() {
        let exe = std::env::current_exe().unwrap();
        let r = check_static(&exe);
        if cfg!(target_feature = "crt-static") {
            assert!(r.is_ok(), "{r:?}");
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("dynamically linked") && e.contains("x86_64-unknown-linux-musl"), "{e}");
        }
    }

    #[test]
    fn the_small_static_builds_come_before_the_running_binary() {
        for running in ["/w/target/release/reparent", "/w/target/x86_64-unknown-linux-gnu/release/reparent"] {
            let c = static_candidates(Path::new(running));
            let guest = c.iter().position(|p| p.ends_with("guest/reparent") && p.starts_with("/w/target"));
            let musl = c.iter().position(|p| p == Path::new("/w/target/x86_64-unknown-linux-musl/release/reparent"));
            let me = c.iter().position(|p| p == Path::new(running));
            assert!(guest.is_some() && guest < musl, "{running}: {c:?}");
            assert!(musl.is_some() && musl < me && me == Some(c.len() - 1), "{running}: {c:?}");
        }
    }

    #[test]
    fn only_a_boot_header_makes_a_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("bzImage");
        let mut b = vec![0u8; 0x300];
        b[0x202..0x206].copy_from_slice(b"HdrS");
        std::fs::write(&k, &b).unwrap();
        check_kernel(&k).unwrap();
        b[0x203] = b'X';
        std::fs::write(&k, &b).unwrap();
        let e = check_kernel(&k).unwrap_err().to_string();
        assert!(e.contains("not a bootable x86 kernel image") && e.contains("HdrS"), "{e}");
        let short = dir.path().join("short");
        std::fs::write(&short, b"HdrS").unwrap();
        assert!(check_kernel(&short).is_err());
    }
}
