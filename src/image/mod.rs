//! Image store: registry pulls, content-addressed blobs, unpacked layers, archives and rootfs mounts.
//!
//! On-disk layout under `<state root>/images/`:
//!
//! ```text
//! blobs/sha256/<hex>     every manifest, config and (compressed) layer blob, named by its digest
//! layers/<diff hex>/     one unpacked layer (overlayfs lower dir), named by its uncompressed digest
//! tmp/                   partial downloads (`<hex>.partial`) and layers being unpacked
//! index.json             images (by config digest) and the tags that point at them
//! lock                   flock(2) taken around every read-modify-write of `index.json`
//! ```
//!
//! A blob or layer directory only ever appears under its final name by an atomic rename after its
//! digest was verified, so anything found there is complete; it is verified again when it is read.

mod archive;
mod assemble;
mod auth;
mod digest;
mod error;
mod platform;
mod policy;
mod pull;
mod push;
mod reference;
mod rootfs;
mod store;
mod unpack;

pub use archive::{load_archive, save_archive};
pub use assemble::NewImage;
pub use auth::{login, logout, registry_auth, Credentials, DockerConfig};
pub use digest::Digest;
pub use error::ImageError;
pub use platform::Platform;
pub use policy::{age, should_pull, PullDecision, PullPolicy};
pub use pull::{check_login, pull, pull_many, PullOptions, PullOutcome};
pub use push::push;
pub use reference::Reference;
pub use rootfs::{mount_rootfs, mount_rootfs_volatile, unmount_rootfs};
pub use store::{ImageRecord, ImageStore, ImageSummary, LayerRecord, PruneReport, RemoveReport};
pub use unpack::{unpack_layer, UnpackReport};

/// Result type of the image module.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
