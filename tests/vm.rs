//! `reparent vm` without a virtual machine: the guest's `/init` role run by
//! hand (`reparent __vminit PLAN`, which neither mounts nor stops anything
//! off a guest) must report its commands in frames the host decodes, and
//! the host must refuse, with the fix, what cannot boot. Booting real
//! kernels is `ci/test`'s VM step (QEMU and kernel images are not assumed
//! here).

use std::path::Path;
use std::process::Command;

use reparent_harness::vm::frame::{Decoder, Frame, Status};

const EXE: &str = env!("CARGO_BIN_EXE_reparent");

fn scenarios() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").display().to_string()
}

#[test]
fn the_guest_role_reports_every_command_in_frames_and_exits_with_the_worst_status() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let tree = format!("{}/subreaper-adopts-sleep.tree", scenarios());
    // Paths of this checkout: no quote or backslash to escape.
    let json = format!(
        r#"{{"commands": [["explain", "{tree}"], ["run", "/nonexistent/typo.tree"]], "scenarios": "{}"}}"#,
        scenarios()
    );
    std::fs::write(&plan, json).unwrap();
    let out = Command::new(EXE).args(["__vminit", plan.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "the worst command's status: {out:?}");
    let mut dec = Decoder::default();
    let frames: Vec<Frame> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| dec.line(l).unwrap().expect("only frames")).collect();
    assert!(matches!(&frames[0], Frame::Hello { release, .. } if !release.is_empty()), "{frames:?}");
    assert_eq!(frames[1], Frame::Begin(vec!["explain".into(), tree.clone()]));
    let explained: Vec<u8> = frames
        .iter()
        .take_while(|f| !matches!(f, Frame::End { .. }))
        .filter_map(|f| if let Frame::Out(b) = f { Some(b.clone()) } else { None })
        .flatten()
        .collect();
    assert!(String::from_utf8_lossy(&explained).contains("sleep"), "explain's output travels");
    let ends: Vec<&Status> =
        frames.iter().filter_map(|f| if let Frame::End { status, .. } = f { Some(status) } else { None }).collect();
    assert_eq!(ends, vec![&Status::Exited(0), &Status::Exited(2)]);
    let typo_err: Vec<u8> = frames
        .iter()
        .skip_while(|f| !matches!(f, Frame::Begin(a) if a[0] == "run"))
        .filter_map(|f| if let Frame::Err(b) = f { Some(b.clone()) } else { None })
        .flatten()
        .collect();
    assert!(String::from_utf8_lossy(&typo_err).contains("typo.tree"), "stderr travels apart from stdout");
    assert_eq!(frames.last(), Some(&Frame::Bye));
}

#[test]
fn a_plan_that_does_not_load_is_reported_not_run() {
    let out = Command::new(EXE).args(["__vminit", "/nonexistent/plan.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    let mut dec = Decoder::default();
    let frames: Vec<Frame> =
        String::from_utf8(out.stdout).unwrap().lines().filter_map(|l| dec.line(l).unwrap()).collect();
    assert!(
        matches!(&frames[2], Frame::End { status: Status::NotStarted(why), .. } if why.contains("cannot read the plan")),
        "{frames:?}"
    );
}

fn vm(args: &[&str]) -> (i32, String) {
    let out = Command::new(EXE).arg("vm").args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn what_cannot_boot_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A fake QEMU, so that the checks below run whether or not QEMU is here.
    let qemu = dir.path().join("qemu");
    std::fs::write(&qemu, "#!/bin/sh\nexit 0\n").unwrap();
    let qemu = qemu.to_str().unwrap();
    let mut fake = vec![0u8; 0x400];
    fake[0x202..0x206].copy_from_slice(b"HdrS");
    let kernel = dir.path().join("bzImage");
    std::fs::write(&kernel, &fake).unwrap();
    let kernel = kernel.to_str().unwrap();

    let (code, err) = vm(&["--kernel", "Cargo.toml", "--qemu", qemu, "--static-binary", EXE]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Cargo.toml is not a bootable x86 kernel image") && err.contains("HdrS"), "{err}");

    // This suite's own binary is static (.cargo/config.toml); the shell is
    // a dynamically linked binary on every distribution this runs on.
    let (code, err) = vm(&["--kernel", kernel, "--qemu", qemu, "--static-binary", "/bin/sh"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/bin/sh is dynamically linked"), "{err}");
    assert!(err.contains("cargo build --profile guest"), "{err}");

    let (code, err) = vm(&["--kernel", kernel, "--qemu", "/nonexistent/qemu", "--static-binary", EXE]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("QEMU not found") && err.contains("apt-get install qemu-system-x86"), "{err}");

    let (code, err) = vm(&["--kernel", kernel, "--qemu", qemu, "--static-binary", "/nonexistent/reparent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/reparent"), "{err}");
}

#[test]
fn matrix_refuses_a_directory_without_kernels() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "not a kernel").unwrap();
    let out = Command::new(EXE).args(["matrix", "--qemu", "/bin/true"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no kernel image"), "{err}");
}

#[test]
fn the_plans_environment_reaches_the_command_and_a_failing_case_comes_back_as_a_file_frame() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-scenarios");
    std::fs::create_dir(&empty).unwrap();
    let plan = dir.path().join("plan.json");
    // The model made wrong on purpose through the plan's environment, as
    // `reparent vm --model-mutation` passes it: the random cases catch it,
    // shrink it and write a .tree, which the guest role sends as a frame.
    let json = format!(
        r#"{{"commands": [["check", "--cases", "40", "--seed", "7", "--scenarios", "{}"]], "scenarios": "{}",
            "env": [["REPARENT_MODEL_MUTATION", "farthest-subreaper"]]}}"#,
        empty.display(),
        scenarios()
    );
    std::fs::write(&plan, json).unwrap();
    let out = Command::new(EXE).args(["__vminit", plan.to_str().unwrap()]).output().unwrap();
    let mut dec = Decoder::default();
    let frames: Vec<Frame> =
        String::from_utf8(out.stdout).unwrap().lines().filter_map(|l| dec.line(l).unwrap()).collect();
    let ends: Vec<&Status> =
        frames.iter().filter_map(|f| if let Frame::End { status, .. } = f { Some(status) } else { None }).collect();
    assert_eq!(ends, vec![&Status::Exited(1)], "the mutation is caught: {frames:?}");
    let files: Vec<(&String, &Vec<u8>)> = frames
        .iter()
        .filter_map(|f| if let Frame::File { name, bytes } = f { Some((name, bytes)) } else { None })
        .collect();
    assert_eq!(files.len(), 1, "{frames:?}");
    assert!(files[0].0.ends_with(".tree") && !files[0].0.contains('/'), "{}", files[0].0);
    let text = String::from_utf8_lossy(files[0].1);
    assert!(text.contains("tree:") && text.contains("subreaper"), "{text}");
    assert_eq!(frames.last(), Some(&Frame::Bye));
}
