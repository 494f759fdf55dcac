//! `reparent vm` and `reparent matrix`: the suite on a kernel it does not
//! run on, booted under QEMU.
//!
//! A kernel developer or a distribution asks whether *this* kernel image
//! still reparents correctly without rebooting into it. The host side
//! ([`host`]) packs a static build of this binary and the scenarios into an
//! initramfs ([`cpio`]), boots the image, and reads back what the guest side
//! ([`guest`], the same binary as `/init`) reports over a serial port of its
//! own ([`frame`]). [`image`] checks the inputs first. [`matrix`] runs many
//! kernels and sets their tables side by side.

#![forbid(unsafe_code)]

pub mod cpio;
pub mod frame;
pub mod guest;
pub mod host;
pub mod image;
pub mod matrix;
