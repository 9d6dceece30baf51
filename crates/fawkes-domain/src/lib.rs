//! The domain: what Fawkes does, with no knowledge of HTTP, sockets or pages.
//!
//! Each context (accounts, messaging, comments, posts, notifications) is a struct of named
//! actions. Every action that changes state takes the acting identity ([`Actor`]) and runs the
//! same four steps: validate the input, ask the resource's policy whether this actor may do this
//! to this record, persist, then broadcast on the bus. REST handlers, channels and live pages all call these actions, so a
//! rule lives in exactly one place.
//!
//! The input and output types are the public JSON shapes too: they derive serde and a `utoipa`
//! schema, so the REST API, the channel payloads and the OpenAPI document can never disagree.

pub mod accounts;
mod actor;
mod authors;
mod coherent;
pub mod comments;
mod error;
pub mod housekeeping;
pub mod jobs;
pub mod messaging;
pub mod notifications;
pub mod outbound;
mod page;
pub mod posts;
pub mod publishing;
mod store;
mod time;
mod validation;

use std::sync::Arc;

pub use actor::{Actor, Identity, Role, Scope, Service};
pub use authors::Author;
pub use coherent::{CacheSettings, CacheStats};
pub use error::{AuthFailure, DomainError, FieldErrors};
pub use page::{Cursor, Page, PageRequest};
pub use time::Timestamp;
pub use validation::validate;

use fawkes_pubsub::PubSub;
use sea_orm::DatabaseConnection;

/// Every context, sharing one database pool and one bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Domain {
    pub accounts: accounts::Accounts,
    pub messaging: messaging::Messaging,
    pub comments: comments::Comments,
    pub posts: posts::Posts,
    pub notifications: notifications::Notifications,
    /// The job queue's admin actions.
    pub jobs: jobs::Jobs,
    pub publishing: publishing::Publishing,
    /// Which outbound sinks want which events (configured by the server; none by default).
    pub sinks: fawkes_sync::Router,
    /// What Firebase sinks mirror, read at send time.
    pub mirror: outbound::Mirror,
    /// Who is on which topic (rooms track their members' connections).
    pub presence: fawkes_presence::Tracker,
    authors: authors::Authors,
}

impl Domain {
    /// Each in-memory cache's counters by name, for metrics.
    pub fn cache_stats(&self) -> [(&'static str, &Arc<CacheStats>); 3] {
        [
            ("auth", self.accounts.cache_stats()),
            ("messages", self.messaging.cache_stats()),
            ("authors", self.authors.stats()),
        ]
    }

    /// The nodes of the cluster with what each reports (admins only).
    pub fn list_nodes(&self, actor: &Actor) -> Result<Vec<serde_json::Value>, DomainError> {
        match actor {
            Actor::Anonymous => Err(AuthFailure::Missing.into()),
            _ if actor.is_admin() => Ok(self.presence.nodes()),
            _ => Err(DomainError::Forbidden("only admins may list the nodes")),
        }
    }

    pub fn new(
        db: DatabaseConnection,
        bus: PubSub,
        auth: accounts::AuthSettings,
        topics: Vec<publishing::TopicRule>,
    ) -> Self {
        let db = Arc::new(db);
        let presence = fawkes_presence::Tracker::new(bus.clone());
        let jobs = jobs::Jobs::new(db.as_ref().clone());
        let sinks = fawkes_sync::Router::default();
        // Costs nothing until a sink mirrors presence.
        outbound::follow_presence(sinks.clone(), db.clone(), &presence);
        let cache = auth.cache;
        let authors = authors::Authors::new(db.clone(), bus.clone(), cache);
        Self {
            accounts: accounts::Accounts::new(db.clone(), bus.clone(), auth, authors.clone()),
            messaging: messaging::Messaging::new(
                db.clone(),
                bus.clone(),
                presence.clone(),
                sinks.clone(),
                authors.clone(),
                cache,
            ),
            comments: comments::Comments::new(
                db.clone(),
                bus.clone(),
                sinks.clone(),
                authors.clone(),
            ),
            notifications: notifications::Notifications::new(
                db.clone(),
                bus.clone(),
                authors.clone(),
            ),
            posts: posts::Posts::new(db.clone(), bus.clone(), sinks.clone(), authors.clone()),
            jobs,
            publishing: publishing::Publishing::new(bus, topics),
            mirror: outbound::Mirror::new(db, presence.clone(), authors.clone()),
            authors,
            sinks,
            presence,
        }
    }
}
