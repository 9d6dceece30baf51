//! The `fawkes` binary's library half: configuration and assembling the server from the crates.
//! `main.rs` only parses the command line and reports errors.

pub mod backup;
pub mod config;
pub mod scheduled_backup;
pub mod server;
pub mod test_jobs;

pub use config::Config;
