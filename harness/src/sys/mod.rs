//! The system layer (stub).
