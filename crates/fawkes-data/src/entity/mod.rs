//! SeaORM models, one module per table.

pub mod api_key;
pub mod comment;
pub mod job;
pub mod message;
pub mod notification;
pub mod post;
pub mod post_comment;
pub mod refresh_token;
pub mod room;
pub mod room_member;
pub mod room_read;
pub mod session;
pub mod sink_missed;
pub mod user;
pub mod user_device;
