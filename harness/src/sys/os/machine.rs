//! The calls `reparent vm` needs on either side of a virtual machine: on
//! the host, whether KVM can run a guest; in the guest, draining the serial
//! port before the machine stops, and stopping it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{last, SysError};

/// Whether `/dev/kvm` can create a virtual machine for us: it opens, speaks
/// API version 12, and `KVM_CREATE_VM` succeeds. `Err` says why not.
pub fn kvm_usable() -> Result<(), String> {
    const KVM_GET_API_VERSION: libc::Ioctl = 0xAE00;
    const KVM_CREATE_VM: libc::Ioctl = 0xAE01;
    // SAFETY: a valid NUL-terminated path; the descriptor is new and ours.
    let fd = unsafe { libc::open(c"/dev/kvm".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(libc::EACCES) => " (for KVM, this user needs read-write access to /dev/kvm: the group `kvm`)",
            Some(libc::ENOENT) => " (no KVM on this machine)",
            _ => "",
        };
        return Err(format!("open(/dev/kvm) failed: {e}{hint}"));
    }
    // SAFETY: a fresh descriptor we own.
    let kvm = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: this ioctl takes no argument.
    let v = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    if v != 12 {
        return Err(format!("/dev/kvm speaks API version {v}, not 12"));
    }
    // SAFETY: the argument is the machine type, 0 for the default.
    let vm = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0) };
    if vm < 0 {
        return Err(format!("ioctl(/dev/kvm, KVM_CREATE_VM) failed: {}", io::Error::last_os_error()));
    }
    // SAFETY: the new VM's descriptor is ours; closing it destroys the VM.
    drop(unsafe { OwnedFd::from_raw_fd(vm) });
    Ok(())
}

/// `tcdrain(fd)`: returns once a tty has sent everything written to it, so
/// that the last report lines leave the guest before it stops.
pub fn tcdrain(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    // SAFETY: a borrowed descriptor for the duration of the call.
    if unsafe { libc::tcdrain(fd.as_raw_fd()) } < 0 {
        return Err(last("tcdrain"));
    }
    Ok(())
}

/// Whether this process is the PID 1 of a guest that `reparent vm` booted:
/// PID 1, with `reparent.vm=1` on the kernel command line. Nothing that
/// stops a machine runs unless this holds.
pub fn is_vm_guest_init() -> bool {
    super::getpid() == 1
        && std::fs::read_to_string("/proc/cmdline").is_ok_and(|c| c.split_whitespace().any(|w| w == "reparent.vm=1"))
}

/// Stops the guest: writes `code` to QEMU's `isa-debug-exit` port (0xf4;
/// QEMU then exits with `code * 2 + 1`), and should
/// the machine have no such device, powers it off. Refuses unless
/// [`is_vm_guest_init`]; returns only on failure.
pub fn stop_vm_guest(code: u8) -> SysError {
    if !is_vm_guest_init() {
        return SysError::Protocol("refusing to stop the machine: not the init of a `reparent vm` guest".into());
    }
    if let Err(e) = debug_exit(code) {
        eprintln!("reparent /init: isa-debug-exit: {e}; powering off instead");
    }
    // SAFETY: checked above that this is the init of a guest booted by
    // `reparent vm` (PID 1 with its marker on the kernel command line):
    // powering off ends that virtual machine only.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    last("reboot(RB_POWER_OFF)")
}

/// `outb(code, 0xf4)` after `ioperm(0xf4, 1, 1)`: QEMU's `isa-debug-exit`
/// device ends the machine. Only [`stop_vm_guest`] calls it.
#[cfg(target_arch = "x86_64")]
fn debug_exit(code: u8) -> Result<(), SysError> {
    const PORT: u16 = 0xf4;
    // SAFETY: asks the kernel for access to one I/O port; no memory is involved.
    if unsafe { libc::syscall(libc::SYS_ioperm, libc::c_ulong::from(PORT), 1 as libc::c_ulong, 1 as libc::c_int) } < 0 {
        return Err(last("ioperm(0xf4, 1, 1)"));
    }
    // SAFETY: the caller checked that this is a `reparent vm` guest, whose
    // port 0xf4 is QEMU's isa-debug-exit device; access was granted above.
    unsafe { std::arch::asm!("out dx, al", in("dx") PORT, in("al") code, options(nomem, nostack, preserves_flags)) };
    Err(SysError::Protocol("the machine went on after the write to isa-debug-exit (no such device?)".into()))
}

#[cfg(not(target_arch = "x86_64"))]
fn debug_exit(_code: u8) -> Result<(), SysError> {
    Err(SysError::Protocol("isa-debug-exit is an x86 device".into()))
}
