//! The HTML document around a live page, and the pieces every page shares.

use fawkes_assets::urls;
use fawkes_live::{Dynamic, Flash, List, PageRender, Rendered, html};

use super::header::Header;
use super::session::PageSession;

/// The whole document for the first, plain HTTP render.
pub fn document(page: &PageRender, csrf: &str) -> String {
    let title = page.title.clone().unwrap_or_else(|| "Fawkes".into());
    // The container is the runtime's own output, already escaped hole by hole.
    let body = Dynamic::Html(page.html.clone());
    let (css, phoenix, live_view, app) = (
        urls::APP_CSS,
        urls::PHOENIX_JS,
        urls::LIVE_VIEW_JS,
        urls::APP_JS,
    );
    let doc: Rendered = html!(
        r#"<!DOCTYPE html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <meta name="viewport" content="width=device-width, initial-scale=1">
          <meta name="csrf-token" content="{csrf}">
          <title data-suffix=" · Fawkes">{title}</title>
          <link rel="icon" href="data:,">
          <link rel="stylesheet" href="{css}">
          <script defer src="{phoenix}"></script>
          <script defer src="{live_view}"></script>
          <script defer src="{app}"></script>
        </head>
        <body class="min-h-screen bg-base-200">{body}</body>
        </html>"#
    );
    doc.to_html()
}

/// The page frame: the navigation bar (with the header's unread count), the flash messages,
/// then the page's own content.
pub fn shell(session: &PageSession, header: &Header, flash: &Flash, content: Rendered) -> Rendered {
    html!(
        r#"<div class="min-h-screen flex flex-col">
          {navbar(session, header)}
          <main class="w-full max-w-5xl mx-auto p-3 sm:p-6 flex-1 flex flex-col gap-4">
            {flashes(flash)}
            {content}
          </main>
        </div>"#
    )
}

fn navbar(session: &PageSession, header: &Header) -> Rendered {
    let links = match &session.user {
        Some(user) => {
            let admin = user.role == fawkes_domain::Role::Admin;
            let admin_link = admin.then(|| {
                html!(r#"<li><a href="/admin" data-phx-link="redirect" data-phx-link-state="push" id="nav-admin">Admin</a></li>"#)
            });
            let csrf = session.csrf.as_str();
            let username = user.username.as_str();
            let unread = match header.unread() {
                0 => None,
                n if n > 99 => Some(html!(
                    r#"<span class="badge badge-sm badge-primary" id="nav-unread">99+</span>"#
                )),
                n => Some(html!(
                    r#"<span class="badge badge-sm badge-primary" id="nav-unread">{n}</span>"#
                )),
            };
            html!(
                r#"<ul class="menu menu-horizontal menu-sm sm:menu-md px-0 sm:px-1 items-center gap-0 sm:gap-1">
                  <li><a href="/rooms" data-phx-link="redirect" data-phx-link-state="push" id="nav-rooms">Rooms</a></li>
                  <li><a href="/posts" data-phx-link="redirect" data-phx-link-state="push" id="nav-posts">Posts</a></li>
                  {admin_link}
                  <li><a href="/notifications" data-phx-link="redirect" data-phx-link-state="push" id="nav-notifications" aria-label="Notifications" title="Notifications"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" class="size-5" aria-hidden="true"><path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9"/><path d="M10.3 21a1.94 1.94 0 0 0 3.4 0"/></svg>{unread}</a></li>
                  <li><a href="/profile" data-phx-link="redirect" data-phx-link-state="push" id="nav-profile"><span class="font-semibold" id="nav-username">{username}</span></a></li>
                  <li>
                    <form action="/logout" method="post" class="inline">
                      <input type="hidden" name="_csrf_token" value="{csrf}">
                      <button type="submit" class="btn btn-ghost btn-sm" id="logout">Log out</button>
                    </form>
                  </li>
                </ul>"#
            )
        }
        None => html!(
            r#"<ul class="menu menu-horizontal px-1 gap-1">
              <li><a href="/posts" id="nav-posts">Posts</a></li>
              <li><a href="/login" id="nav-login">Log in</a></li>
              <li><a href="/signup" class="btn btn-primary btn-sm" id="nav-signup">Sign up</a></li>
            </ul>"#
        ),
    };
    html!(
        r#"<nav class="navbar bg-base-100 shadow-sm px-2 sm:px-6 flex-wrap">
          <div class="flex-1"><a href="/rooms" class="btn btn-ghost text-lg sm:text-xl">Fawkes</a></div>
          <div class="flex-none">{links}</div>
        </nav>"#
    )
}

fn flashes(flash: &Flash) -> List {
    List::keyed(flash.iter().map(|(kind, message)| {
        let class = if kind == "error" { "alert-error" } else { "alert-info" };
        let kind = kind.as_str();
        let message = message.as_str();
        (
            kind.to_owned(),
            html!(
                r#"<div role="alert" class="alert {class}" id="flash-{kind}" phx-click="lv:clear-flash" phx-value-key="{kind}">
                  <span>{message}</span>
                </div>"#
            ),
        )
    }))
}

/// One form field with its label and its errors (shown once the user has touched it).
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub errors: &'a [String],
    pub autocomplete: &'a str,
}

pub fn field(f: Field<'_>) -> Rendered {
    let Field {
        name,
        label,
        kind,
        value,
        errors,
        autocomplete,
    } = f;
    let invalid = if errors.is_empty() { "" } else { "input-error" };
    let messages = List::keyed(errors.iter().enumerate().map(|(i, e)| {
        let e = e.as_str();
        (i, html!(r#"<p class="text-error text-sm">{e}</p>"#))
    }));
    html!(
        r#"<fieldset class="fieldset" id="field-{name}">
          <legend class="fieldset-legend">{label}</legend>
          <input type="{kind}" name="{name}" id="input-{name}" value="{value}" class="input w-full {invalid}" autocomplete="{autocomplete}" phx-debounce="200">
          <div id="errors-{name}">{messages}</div>
        </fieldset>"#
    )
}
