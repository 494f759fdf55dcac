//! The driver (stub).
