//! `berth watch`: `develop.watch` rules applied to running containers as files change.

pub mod sync;
