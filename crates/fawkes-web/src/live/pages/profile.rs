//! The user's own account: username, password, and the devices signed in, each revocable.

use std::sync::Arc;

use async_trait::async_trait;
use fawkes_domain::Domain;
use fawkes_domain::accounts::{ChangePassword, ChangeUsername, Device};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;
use uuid::Uuid;

use super::{report, require_user};
use crate::live::form::FormState;
use crate::live::header::Header;
use crate::live::layout::{Field, field, shell};
use crate::live::session::PageSession;

pub struct ProfileView {
    domain: Arc<Domain>,
    header: Header,
    session: Option<PageSession>,
    username: FormState,
    password: FormState,
    devices: Vec<Device>,
}

impl ProfileView {
    pub fn new(domain: Arc<Domain>) -> Self {
        Self {
            domain,
            header: Header::default(),
            session: None,
            username: FormState::default(),
            password: FormState::default(),
            devices: Vec::new(),
        }
    }

    async fn load_devices(&mut self, s: &PageSession, ctx: &mut LiveContext) {
        match self.domain.accounts.list_devices(&s.actor).await {
            Ok(devices) => self.devices = devices,
            Err(error) => report(ctx, Err(error)),
        }
    }
}

#[async_trait]
impl LiveView<PageSession> for ProfileView {
    async fn mount(
        &mut self,
        s: &PageSession,
        _: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        require_user(s)?;
        ctx.set_title("Profile");
        self.username
            .values
            .insert("username".into(), s.username().to_owned());
        self.session = Some(s.clone());
        self.load_devices(s, ctx).await;
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, s: &PageSession, event: Event, ctx: &mut LiveContext) {
        let accounts = &self.domain.accounts;
        match event.name.as_str() {
            "validate_username" | "save_username" => {
                self.username.update(&event, &["username"]);
                let input = ChangeUsername {
                    username: self.username.value("username").trim().to_owned(),
                };
                self.username.set_result(fawkes_domain::validate(&input));
                if event.name == "save_username" && self.username.is_valid() {
                    match accounts.change_username(&s.actor, input).await {
                        Ok(user) => {
                            if let Some(session) = &mut self.session {
                                session.user = Some(user);
                            }
                            ctx.put_flash("info", "Username changed.");
                        }
                        Err(error) => self.username.set_result(Err(error)),
                    }
                }
            }
            "validate_password" | "save_password" => {
                self.password
                    .update(&event, &["current_password", "new_password"]);
                let input = |form: &FormState| ChangePassword {
                    current_password: form.value("current_password").to_owned(),
                    new_password: form.value("new_password").to_owned(),
                };
                self.password
                    .set_result(fawkes_domain::validate(&input(&self.password)));
                if event.name == "save_password" && self.password.is_valid() {
                    match accounts
                        .change_password(&s.actor, input(&self.password))
                        .await
                    {
                        Ok(()) => {
                            self.password.clear();
                            ctx.put_flash(
                                "info",
                                "Password changed. Your other devices were signed out.",
                            );
                            self.load_devices(s, ctx).await;
                        }
                        Err(error) => self.password.set_result(Err(error)),
                    }
                }
            }
            "revoke" => {
                if let Some(id) = event
                    .params
                    .get("id")
                    .and_then(|id| id.parse::<Uuid>().ok())
                {
                    let revoked = accounts.revoke_device(&s.actor, id).await.map(|_| ());
                    report(ctx, revoked);
                    self.load_devices(s, ctx).await;
                }
            }
            _ => {}
        }
    }

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, _: &mut LiveContext) {
        self.header.handle_info(&self.domain, s, info).await;
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let (u, p) = (&self.username, &self.password);
        let username = field(Field {
            name: "username",
            label: "Username",
            kind: "text",
            value: u.value("username"),
            errors: u.errors("username"),
            autocomplete: "username",
        });
        let current = field(Field {
            name: "current_password",
            label: "Current password",
            kind: "password",
            value: p.value("current_password"),
            errors: p.errors("current_password"),
            autocomplete: "current-password",
        });
        let new = field(Field {
            name: "new_password",
            label: "New password",
            kind: "password",
            value: p.value("new_password"),
            errors: p.errors("new_password"),
            autocomplete: "new-password",
        });
        let current_device = session.actor.identity().and_then(|i| i.device_id);
        let devices = List::keyed(self.devices.iter().map(|d| {
            let id = d.id;
            let name = d.name.clone().unwrap_or_else(|| d.device_id.clone());
            let seen = d.last_seen_at.format("%Y-%m-%d %H:%M").to_string();
            let this = (current_device == Some(id)).then(|| html!(r#"<span class="badge badge-success">this browser</span>"#));
            let state = if d.is_active {
                html!(r#"<button class="btn btn-sm btn-outline btn-error" phx-click="revoke" phx-value-id="{id}" id="revoke-{id}" data-confirm="Sign this device out?">Sign out</button>"#)
            } else {
                html!(r#"<span class="badge">signed out</span>"#)
            };
            (
                id,
                html!(r#"<tr id="device-{id}"><td>{name} {this}</td><td class="opacity-70">{seen}</td><td class="text-right">{state}</td></tr>"#),
            )
        }));
        let content = html!(
            r#"<div class="grid gap-4 md:grid-cols-2">
              <section class="card bg-base-100 shadow"><div class="card-body">
                <h2 class="card-title">Username</h2>
                <form id="username-form" phx-change="validate_username" phx-submit="save_username">
                  {username}
                  <button class="btn btn-primary mt-2" type="submit" id="save-username">Save</button>
                </form>
              </div></section>
              <section class="card bg-base-100 shadow"><div class="card-body">
                <h2 class="card-title">Password</h2>
                <form id="password-form" phx-change="validate_password" phx-submit="save_password">
                  {current}{new}
                  <button class="btn btn-primary mt-2" type="submit" id="save-password">Change password</button>
                </form>
              </div></section>
              <section class="card bg-base-100 shadow md:col-span-2"><div class="card-body">
                <h2 class="card-title">Devices</h2>
                <div class="overflow-x-auto"><table class="table" id="devices">
                  <thead><tr><th>Device</th><th>Last seen</th><th></th></tr></thead>
                  <tbody>{devices}</tbody>
                </table></div>
              </div></section>
            </div>"#
        );
        shell(session, &self.header, flash, content)
    }
}
