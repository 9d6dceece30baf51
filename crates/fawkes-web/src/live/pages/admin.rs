//! Administration: find users, change their role, deactivate them, and live counters of the
//! cluster (connections, nodes, messages per minute) that refresh by themselves.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use async_trait::async_trait;
use fawkes_domain::accounts::{UpdateUser, User};
use fawkes_domain::{Domain, Role};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{report, require_user};
use crate::live::header::Header;
use crate::live::layout::shell;
use crate::live::session::PageSession;

const REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Clone, PartialEq)]
struct Counters {
    connections: u64,
    nodes: usize,
    messages_per_minute: u64,
}

pub struct AdminView {
    domain: Arc<Domain>,
    header: Header,
    endpoint: fawkes_channels::Endpoint,
    session: Option<PageSession>,
    query: String,
    users: Vec<User>,
    counters: Counters,
}

impl AdminView {
    pub fn new(domain: Arc<Domain>, endpoint: fawkes_channels::Endpoint) -> Self {
        Self {
            domain,
            header: Header::default(),
            endpoint,
            session: None,
            query: String::new(),
            users: Vec::new(),
            counters: Counters::default(),
        }
    }

    async fn search(&mut self, s: &PageSession, ctx: &mut LiveContext) {
        match self
            .domain
            .accounts
            .search_users(&s.actor, &self.query, 50)
            .await
        {
            Ok(users) => self.users = users,
            Err(error) => report(ctx, Err(error)),
        }
    }

    /// Connections summed over the nodes' reports (this node's own count when alone).
    async fn count(&mut self, s: &PageSession) {
        let nodes = self.domain.list_nodes(&s.actor).unwrap_or_default();
        let reported: u64 = nodes
            .iter()
            .filter_map(|n| {
                n.pointer("/info/connections")
                    .or_else(|| n.get("connections"))
            })
            .filter_map(Value::as_u64)
            .sum();
        let own = self.endpoint.stats().connections.load(Relaxed);
        let minute = Duration::from_secs(60);
        self.counters = Counters {
            connections: reported.max(own),
            nodes: nodes.len().max(1),
            messages_per_minute: self
                .domain
                .messaging
                .recent_message_count(&s.actor, minute)
                .await
                .unwrap_or_default(),
        };
    }

    fn is_admin(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.actor.is_admin())
    }
}

#[async_trait]
impl LiveView<PageSession> for AdminView {
    async fn mount(
        &mut self,
        s: &PageSession,
        _: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        require_user(s)?;
        ctx.set_title("Admin");
        self.session = Some(s.clone());
        if s.actor.is_admin() {
            self.search(s, ctx).await;
            self.count(s).await;
            ctx.send_after(REFRESH, "tick", json!({}));
        }
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, s: &PageSession, event: Event, ctx: &mut LiveContext) {
        let id = event
            .params
            .get("id")
            .and_then(|id| id.parse::<Uuid>().ok());
        let accounts = &self.domain.accounts;
        match (event.name.as_str(), id) {
            ("search", _) => {
                self.query = event.params.text("q").trim().to_owned();
                self.search(s, ctx).await;
            }
            ("set_role", Some(id)) => {
                let change = UpdateUser {
                    role: Role::parse(event.params.text("role")),
                    is_active: None,
                };
                report(
                    ctx,
                    accounts.update_user(&s.actor, id, change).await.map(|_| ()),
                );
                self.search(s, ctx).await;
            }
            ("set_active", Some(id)) => {
                let change = UpdateUser {
                    role: None,
                    is_active: Some(event.params.text("active") == "true"),
                };
                report(
                    ctx,
                    accounts.update_user(&s.actor, id, change).await.map(|_| ()),
                );
                self.search(s, ctx).await;
            }
            _ => {}
        }
    }

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, ctx: &mut LiveContext) {
        if self.header.handle_info(&self.domain, s, info).await {
            return;
        }
        if &*info.event == "tick" && self.is_admin() {
            self.count(s).await;
            ctx.send_after(REFRESH, "tick", json!({}));
        }
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        if !session.actor.is_admin() {
            let content = html!(
                r#"<div role="alert" class="alert alert-warning" id="admin-denied">Only admins may manage users.</div>"#
            );
            return shell(session, &self.header, flash, content);
        }
        let Counters {
            connections,
            nodes,
            messages_per_minute,
        } = self.counters;
        let users = List::keyed(self.users.iter().map(|u| {
            let (id, name, email) = (u.id, u.username.as_str(), u.email.as_str());
            let options = List::keyed([Role::User, Role::Affiliate, Role::Admin].into_iter().map(|role| {
                let value = role.as_str();
                let selected = (role == u.role).then_some("selected");
                (value, html!(r#"<option value="{value}" {selected}>{value}</option>"#))
            }));
            let (label, next, class) = if u.is_active {
                ("Deactivate", "false", "btn-error")
            } else {
                ("Activate", "true", "btn-success")
            };
            let status = if u.is_active { "active" } else { "inactive" };
            (
                id,
                html!(
                    r#"<tr id="user-{id}">
                      <td><div class="font-medium">{name}</div><div class="text-sm opacity-60">{email}</div></td>
                      <td>
                        <form phx-change="set_role" id="role-form-{id}">
                          <input type="hidden" name="id" value="{id}">
                          <select name="role" class="select select-sm" id="role-{id}">{options}</select>
                        </form>
                      </td>
                      <td><span class="badge" id="status-{id}">{status}</span></td>
                      <td class="text-right"><button class="btn btn-sm btn-outline {class}" phx-click="set_active" phx-value-id="{id}" phx-value-active="{next}" id="toggle-{id}">{label}</button></td>
                    </tr>"#
                ),
            )
        }));
        let query = self.query.as_str();
        let content = html!(
            r#"<div class="stats stats-vertical sm:stats-horizontal shadow bg-base-100 w-full">
              <div class="stat"><div class="stat-title">Connections</div><div class="stat-value" id="stat-connections">{connections}</div></div>
              <div class="stat"><div class="stat-title">Nodes</div><div class="stat-value" id="stat-nodes">{nodes}</div></div>
              <div class="stat"><div class="stat-title">Messages / minute</div><div class="stat-value" id="stat-messages">{messages_per_minute}</div></div>
            </div>
            <section class="card bg-base-100 shadow"><div class="card-body">
              <h1 class="card-title">Users</h1>
              <form id="search-form" phx-change="search" phx-submit="search">
                <input type="search" name="q" value="{query}" placeholder="Search by name or email" class="input w-full" id="user-search" phx-debounce="250">
              </form>
              <div class="overflow-x-auto"><table class="table" id="users">
                <thead><tr><th>User</th><th>Role</th><th>Status</th><th></th></tr></thead>
                <tbody>{users}</tbody>
              </table></div>
            </div></section>"#
        );
        shell(session, &self.header, flash, content)
    }
}
