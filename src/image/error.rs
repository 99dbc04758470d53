//! The error type of the image module: each variant names the object and, where there is one, the path.

use std::path::PathBuf;

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::Reference;

/// Everything that can go wrong while pulling, storing, unpacking or mounting images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An image reference that does not parse.
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// A digest string that is not `sha256:<64 hex>`.
    #[error("invalid digest `{0}`: expected `sha256:` and 64 lower-case hex digits")]
    InvalidDigest(String),
    /// An image that is not in the local store.
    #[error("image `{0}` not found locally")]
    NotFound(String),
    /// The registry does not know the repository.
    #[error("image `{reference}` not found in the registry: {detail}")]
    UnknownImage { reference: String, detail: String },
    /// The registry has the repository but not the tag or digest.
    #[error("manifest for `{reference}` not found: unknown tag or digest")]
    UnknownManifest { reference: String },
    /// The registry could not be reached at all.
    #[error("registry `{registry}` is not reachable: {detail}")]
    Unreachable { registry: String, detail: String },
    /// Credentials were refused.
    #[error("access to `{reference}` denied: {detail}")]
    Denied { reference: String, detail: String },
    /// Any other error reported by the registry or the HTTP layer.
    #[error("registry error for `{reference}`: {detail}")]
    Registry { reference: String, detail: String },
    /// Content whose digest does not match what its descriptor promised.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: String, actual: String },
    /// A manifest, index or config that cannot be used.
    #[error("invalid {what}: {detail}")]
    InvalidContent { what: String, detail: String },
    /// An index without an image for the wanted platform.
    #[error("no image for platform `{platform}` in `{reference}` (available: {available})")]
    NoMatchingPlatform { reference: String, platform: String, available: String },
    /// A layer entry that would write outside its layer directory.
    #[error("unsafe layer entry `{entry}`: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    /// A file-system operation failed.
    #[error("failed to {action} `{path}`: {source}")]
    Io { action: String, path: PathBuf, source: std::io::Error },
    /// The image is used by a container.
    #[error("image `{0}` is in use by a container")]
    InUse(String),
    /// An image that matches several tags and needs `force` to be removed by id.
    #[error("image `{0}` is referenced by several tags; remove them one by one or use force")]
    Ambiguous(String),
    /// `pull_policy: never` and the image is missing.
    #[error("image `{0}` is not present locally and the pull policy is `never`")]
    PullNever(String),
    /// A platform string that is not `os/arch[/variant]`.
    #[error("invalid platform `{0}`: expected os/arch[/variant]")]
    InvalidPlatform(String),
    /// A problem with `~/.docker/config.json` or a credential helper.
    #[error("credentials: {0}")]
    Credentials(String),
    /// An archive that is neither an OCI layout nor a `docker save` tarball.
    #[error("invalid archive `{path}`: {detail}")]
    InvalidArchive { path: PathBuf, detail: String },
    /// mount(2)/umount(2) failed.
    #[error("failed to {action} overlay at `{target}`: {source}")]
    Mount { action: &'static str, target: PathBuf, source: nix::Error },
}

impl ImageError {
    /// Wraps an I/O error with what was being done and where.
    pub fn io(action: impl Into<String>, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let action = action.into();
        let path = path.into();
        move |source| ImageError::Io { action, path, source }
    }

    /// Turns `oci-client`'s errors into messages that name the image and say what went wrong.
    pub(crate) fn from_registry(reference: &Reference, e: OciDistributionError) -> ImageError {
        let r = reference.to_string();
        match e {
            OciDistributionError::RequestError(err) if err.is_connect() || err.is_timeout() => {
                let mut detail = err.to_string();
                let mut src = std::error::Error::source(&err);
                while let Some(s) = src {
                    detail = s.to_string();
                    src = s.source();
                }
                ImageError::Unreachable { registry: reference.registry().to_string(), detail }
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let detail = envelope.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
                match envelope.errors.first().map(|e| &e.code) {
                    Some(OciErrorCode::NameUnknown) => ImageError::UnknownImage { reference: r, detail },
                    Some(OciErrorCode::ManifestUnknown) => ImageError::UnknownManifest { reference: r },
                    Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => {
                        ImageError::Denied { reference: r, detail }
                    }
                    _ => ImageError::Registry { reference: r, detail },
                }
            }
            OciDistributionError::ImageManifestNotFoundError(_) => ImageError::UnknownManifest { reference: r },
            OciDistributionError::AuthenticationFailure(d) => ImageError::Denied { reference: r, detail: d },
            OciDistributionError::UnauthorizedError { url } => ImageError::Denied {
                reference: r,
                detail: format!("{url} needs credentials (try `berth login {}`)", reference.registry()),
            },
            OciDistributionError::ServerError { code: 404, .. } => ImageError::UnknownManifest { reference: r },
            other => ImageError::Registry { reference: r, detail: other.to_string() },
        }
    }
}

impl ImageError {
    /// Whether the error is about what was asked for (a reference, an image, a platform or a
    /// policy that is not right), not about the registry, the network or the host.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            ImageError::InvalidReference { .. }
                | ImageError::InvalidDigest(_)
                | ImageError::NotFound(_)
                | ImageError::UnknownImage { .. }
                | ImageError::UnknownManifest { .. }
                | ImageError::NoMatchingPlatform { .. }
                | ImageError::Ambiguous(_)
                | ImageError::PullNever(_)
                | ImageError::InvalidPlatform(_)
        )
    }
}
