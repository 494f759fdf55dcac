//! Records `git describe` of the source as `REPARENT_GIT_DESCRIBE`, when
//! the binary is built from a git checkout with git at hand: the tables of
//! `reparent kernel` say which binary made them. Without git (a source
//! tarball, a machine without it, a checkout git refuses to read) the
//! variable is simply not set; the build never fails for it.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(d) = git(&["describe", "--always", "--tags"]) {
        println!("cargo:rustc-env=REPARENT_GIT_DESCRIBE={d}");
    }
    // Describe again when HEAD moves: HEAD itself (another branch), the
    // branch it names (a commit) and the packed refs. The working tree's
    // state is left out: watching every file would rebuild for nothing. A
    // path that does not exist would make cargo rerun this every time.
    let mut watch = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(format!("{dir}/HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        if let Some(head) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|h| h.starts_with("refs/")) {
            watch.push(format!("{common}/{head}"));
        }
        watch.push(format!("{common}/packed-refs"));
    }
    for path in watch.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}
