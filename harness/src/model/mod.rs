//! The model (stub).
