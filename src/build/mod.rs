//! Image builds: Dockerfiles run by berth itself, with no daemon. The Dockerfile front end
//! (parsing, expansion, build args, stages, `.dockerignore`) is the `berth-dockerfile` crate;
//! this module executes it against the image store and the OCI runtime.

pub mod layer;
