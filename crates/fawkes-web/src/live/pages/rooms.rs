//! The rooms the user can enter, with how many messages they have not read, and a form for a
//! new room.

use std::sync::Arc;

use async_trait::async_trait;
use fawkes_domain::Domain;
use fawkes_domain::messaging::{NewRoom, RoomUnread, room_topic};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;

use super::{report, require_user};
use crate::live::form::FormState;
use crate::live::header::Header;
use crate::live::layout::{Field, field, shell};
use crate::live::session::PageSession;

pub struct RoomsView {
    domain: Arc<Domain>,
    header: Header,
    session: Option<PageSession>,
    rooms: Vec<RoomUnread>,
    form: FormState,
}

const ROOM_FIELDS: [&str; 2] = ["slug", "name"];

impl RoomsView {
    pub fn new(domain: Arc<Domain>) -> Self {
        Self {
            domain,
            header: Header::default(),
            session: None,
            rooms: Vec::new(),
            form: FormState::default(),
        }
    }

    async fn load(&mut self, session: &PageSession) -> Result<(), fawkes_domain::DomainError> {
        self.rooms = self
            .domain
            .messaging
            .rooms_with_unread(&session.actor)
            .await?;
        Ok(())
    }

    fn new_room(&self) -> NewRoom {
        NewRoom {
            slug: self.form.value("slug").trim().to_owned(),
            name: self.form.value("name").trim().to_owned(),
            is_private: false,
        }
    }
}

#[async_trait]
impl LiveView<PageSession> for RoomsView {
    async fn mount(
        &mut self,
        s: &PageSession,
        _: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        require_user(s)?;
        ctx.set_title("Rooms");
        self.session = Some(s.clone());
        let loaded = self.load(s).await;
        report(ctx, loaded);
        if ctx.connected() {
            ctx.subscribe("rooms");
            for entry in &self.rooms {
                ctx.subscribe(room_topic(&entry.room.slug));
            }
        }
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, s: &PageSession, event: Event, ctx: &mut LiveContext) {
        match event.name.as_str() {
            "validate" | "create" => {
                self.form.update(&event, &ROOM_FIELDS);
                self.form
                    .set_result(fawkes_domain::validate(&self.new_room()));
                if event.name == "create" && self.form.is_valid() {
                    match self
                        .domain
                        .messaging
                        .create_room(&s.actor, self.new_room())
                        .await
                    {
                        Ok(room) => ctx.push_navigate(format!("/rooms/{}", room.slug)),
                        Err(error) => self.form.set_result(Err(error)),
                    }
                }
            }
            _ => {}
        }
    }

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, ctx: &mut LiveContext) {
        if self.header.handle_info(&self.domain, s, info).await {
            return;
        }
        match &*info.event {
            "new_msg" | "room_created" | "msg_deleted" => {
                let loaded = self.load(s).await;
                report(ctx, loaded);
                for entry in &self.rooms {
                    ctx.subscribe(room_topic(&entry.room.slug));
                }
            }
            _ => {}
        }
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let rooms = List::keyed(self.rooms.iter().map(|entry| {
            let room = &entry.room;
            let (slug, name) = (room.slug.as_str(), room.name.as_str());
            let unread = match entry.unread {
                0 => None,
                n if n >= 100 => Some(html!(r#"<span class="badge badge-primary" id="unread-{slug}">99+</span>"#)),
                n => Some(html!(r#"<span class="badge badge-primary" id="unread-{slug}">{n}</span>"#)),
            };
            let private = room.is_private.then(|| html!(r#"<span class="badge badge-ghost">private</span>"#));
            (
                room.id,
                html!(
                    r#"<li><a href="/rooms/{slug}" data-phx-link="redirect" data-phx-link-state="push" id="room-{slug}" class="flex justify-between">
                      <span><span class="font-medium">{name}</span> <span class="opacity-60">#{slug}</span> {private}</span>{unread}
                    </a></li>"#
                ),
            )
        }));
        let form = &self.form;
        let slug = field(Field {
            name: "slug",
            label: "Address (#slug)",
            kind: "text",
            value: form.value("slug"),
            errors: form.errors("slug"),
            autocomplete: "off",
        });
        let name = field(Field {
            name: "name",
            label: "Name",
            kind: "text",
            value: form.value("name"),
            errors: form.errors("name"),
            autocomplete: "off",
        });
        let form_error = form.errors("_form").join(" ");
        let content = html!(
            r#"<div class="grid gap-4 md:grid-cols-3">
              <section class="card bg-base-100 shadow md:col-span-2">
                <div class="card-body">
                  <h1 class="card-title">Rooms</h1>
                  <ul class="menu w-full" id="rooms">{rooms}</ul>
                </div>
              </section>
              <section class="card bg-base-100 shadow">
                <div class="card-body">
                  <h2 class="card-title text-base">New room</h2>
                  <form id="room-form" phx-change="validate" phx-submit="create">
                    {slug}{name}
                    <p class="text-error text-sm">{form_error}</p>
                    <button class="btn btn-primary w-full mt-2" type="submit">Create</button>
                  </form>
                </div>
              </section>
            </div>"#
        );
        shell(session, &self.header, flash, content)
    }
}
