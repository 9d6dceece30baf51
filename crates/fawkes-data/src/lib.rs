//! The data layer: one schema for SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! The backend is picked from the URL at run time. Entities are plain SeaORM models; the domain
//! crate owns every rule about them. All instants are stored as BIGINT Unix milliseconds (UTC),
//! because MySQL's `TIMESTAMP` ends in 2038 and SQLite has no native time type.

pub mod connect;
pub mod entity;
pub mod fault;
pub mod migration;

pub use connect::{ConnectError, PoolOptions, PoolUsage, connect, pool_usage};
pub use fault::{Fault, fault};
pub use migration::Migrator;
pub use sea_orm;
pub use sea_orm_migration::MigratorTrait;

/// The id of the public room `lobby`, created by the first migration on every backend.
pub const LOBBY_ROOM_ID: uuid::Uuid =
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
/// The slug of the public room that always exists.
pub const LOBBY_SLUG: &str = "lobby";
