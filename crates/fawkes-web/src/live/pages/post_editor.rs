//! The post editor (`/posts/new`, `/posts/{id}/edit`), for the post's author only: title and
//! body checked as they are typed with the domain's own rules, save as draft, publish.

use std::sync::Arc;

use async_trait::async_trait;
use fawkes_domain::posts::{NewPost, Post, PostChanges, PostStatus};
use fawkes_domain::{Domain, DomainError};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;
use uuid::Uuid;

use super::require_user;
use crate::live::form::FormState;
use crate::live::header::Header;
use crate::live::layout::{Field, field, shell};
use crate::live::session::PageSession;

const POST_FIELDS: [&str; 2] = ["title", "body"];

pub struct PostEditorView {
    domain: Arc<Domain>,
    header: Header,
    session: Option<PageSession>,
    /// `None` until the first save of a new post.
    post: Option<Post>,
    form: FormState,
}

impl PostEditorView {
    pub fn new(domain: Arc<Domain>) -> Self {
        Self {
            domain,
            header: Header::default(),
            session: None,
            post: None,
            form: FormState::default(),
        }
    }

    fn input(&self) -> NewPost {
        NewPost {
            title: self.form.value("title").to_owned(),
            body: self.form.value("body").to_owned(),
        }
    }

    /// Creates the post or stores the changes; then publishes it when asked.
    async fn save(&mut self, s: &PageSession, publish: bool) -> Result<Post, DomainError> {
        let posts = &self.domain.posts;
        let input = self.input();
        let mut post = match &self.post {
            None => posts.create_post(&s.actor, input).await?,
            Some(post) => {
                let changes = PostChanges {
                    title: Some(input.title),
                    body: Some(input.body),
                };
                posts.update_post(&s.actor, post.id, changes).await?
            }
        };
        self.post = Some(post.clone());
        if publish {
            post = posts.publish_post(&s.actor, post.id).await?;
            self.post = Some(post.clone());
        }
        Ok(post)
    }
}

#[async_trait]
impl LiveView<PageSession> for PostEditorView {
    async fn mount(
        &mut self,
        s: &PageSession,
        params: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        require_user(s)?;
        if let Some(id) = params.get("id") {
            let id: Uuid = id.parse().map_err(|_| Refusal::NotFound)?;
            let post = match self.domain.posts.post_to_edit(&s.actor, id).await {
                Ok(post) => post,
                Err(DomainError::Forbidden(_)) => {
                    return Err(Refusal::Redirect(format!("/posts/{id}")));
                }
                Err(_) => return Err(Refusal::Redirect("/posts".into())),
            };
            self.form.values.insert("title".into(), post.title.clone());
            self.form.values.insert("body".into(), post.body.clone());
            ctx.set_title(format!("Edit {}", post.title));
            self.post = Some(post);
        } else {
            ctx.set_title("New post");
        }
        self.session = Some(s.clone());
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, s: &PageSession, event: Event, ctx: &mut LiveContext) {
        if !matches!(event.name.as_str(), "validate" | "save") {
            return;
        }
        self.form.update(&event, &POST_FIELDS);
        self.form.set_result(fawkes_domain::validate(&self.input()));
        if event.name != "save" || !self.form.is_valid() {
            return;
        }
        let publish = event.params.get("intent") == Some("publish");
        let was_new = self.post.is_none();
        let was_published = self
            .post
            .as_ref()
            .is_some_and(|p| p.status == PostStatus::Published);
        match self.save(s, publish).await {
            Ok(post) if publish => {
                ctx.put_flash(
                    "info",
                    if was_published {
                        "Saved."
                    } else {
                        "Published."
                    },
                );
                ctx.push_navigate(format!("/posts/{}", post.id));
            }
            Ok(post) => {
                ctx.put_flash("info", "Draft saved.");
                if was_new {
                    ctx.push_navigate(format!("/posts/{}/edit", post.id));
                }
            }
            // A new post that was saved but could not be published stays in this editor, which
            // now edits it.
            Err(error) => self.form.set_result(Err(error)),
        }
    }

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, _: &mut LiveContext) {
        self.header.handle_info(&self.domain, s, info).await;
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let form = &self.form;
        let title = field(Field {
            name: "title",
            label: "Title",
            kind: "text",
            value: form.value("title"),
            errors: form.errors("title"),
            autocomplete: "off",
        });
        let body = form.value("body");
        let body_errors = List::keyed(form.errors("body").iter().enumerate().map(|(i, e)| {
            let e = e.as_str();
            (i, html!(r#"<p class="text-error text-sm">{e}</p>"#))
        }));
        let body_invalid = if form.errors("body").is_empty() {
            ""
        } else {
            "textarea-error"
        };
        let form_error = form.errors("_form").join(" ");
        let (heading, status, view_link) = match &self.post {
            None => ("New post", "new", None),
            Some(post) => {
                let id = post.id;
                let link = html!(
                    r#"<a href="/posts/{id}" data-phx-link="redirect" data-phx-link-state="push" class="link text-sm" id="view-post">View post</a>"#
                );
                ("Edit post", post.status.as_str(), Some(link))
            }
        };
        let publish_label = match self.post.as_ref().map(|p| p.status) {
            Some(PostStatus::Published) => "Save",
            _ => "Publish",
        };
        let save_label = match self.post.as_ref().map(|p| p.status) {
            Some(PostStatus::Published) => None,
            _ => Some(html!(
                r#"<button class="btn" type="submit" name="intent" value="draft" id="save-draft">Save draft</button>"#
            )),
        };
        let content = html!(
            r#"<section class="card bg-base-100 shadow">
              <div class="card-body">
                <h1 class="card-title">{heading} <span class="badge badge-outline" id="post-status">{status}</span> {view_link}</h1>
                <form id="post-form" phx-change="validate" phx-submit="save" class="flex flex-col gap-2">
                  {title}
                  <fieldset class="fieldset" id="field-body">
                    <legend class="fieldset-legend">Body</legend>
                    <textarea name="body" id="input-body" rows="14" class="textarea w-full {body_invalid}" phx-debounce="200">{body}</textarea>
                    <div id="errors-body">{body_errors}</div>
                  </fieldset>
                  <p class="text-error text-sm" id="errors-form">{form_error}</p>
                  <div class="flex gap-2 justify-end">
                    {save_label}
                    <button class="btn btn-primary" type="submit" name="intent" value="publish" id="publish">{publish_label}</button>
                  </div>
                </form>
              </div>
            </section>"#
        );
        shell(session, &self.header, flash, content)
    }
}
