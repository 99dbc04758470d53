//! Container names over DNS: the pure [`DnsTable`] and the [`DnsServer`] that serves it.

mod server;
mod table;

pub use server::{DnsConfig, DnsServer};
pub use table::{normalize, parse_reverse_name, DnsContainer, DnsEndpoint, DnsTable, Lookup};
