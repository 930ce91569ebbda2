//! The protocol's own vocabulary, free of HTTP and of the platform: the
//! versions served, the commands, and the request line (MS-ASHTTP).

mod command;
pub mod query;
mod version;

pub use command::Command;
pub use version::Version;
