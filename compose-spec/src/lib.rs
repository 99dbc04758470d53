//! Loads compose files the way Docker Compose does: YAML with positions, interpolation,
//! include/extends, merging of several files, normalization and validation.

pub mod canonical;
pub mod de;
pub mod dotenv;
pub mod env;
pub mod error;
pub mod extends;
pub mod formats;
pub mod interpolate;
pub mod loader;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod output;
pub mod paths;
pub mod resolved;
pub mod select;
pub mod short;
pub mod units;
pub mod unsupported;
pub mod validate;
pub mod view;
pub mod yaml;

pub use error::{Error, Result};
pub use loader::{load, load_str, LoadOptions, Loaded};
pub use model::Project;
