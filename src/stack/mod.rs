//! The whole-project side of berth: how a compose project maps onto networks, volumes and
//! containers (the glue between the loader's model and the networking and volumes crates).

pub mod engine;
pub mod netmodel;
pub mod networking;
pub mod rollback;
pub mod storage;
pub mod volmodel;
