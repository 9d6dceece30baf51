//! Sign-up and log-in. The forms validate on change through the live socket with the domain's
//! rules; a valid submit then posts the form over plain HTTP (`phx-trigger-action`), because
//! only an HTTP response can set the sign-in cookie.

use async_trait::async_trait;
use fawkes_domain::DomainError;
use fawkes_domain::accounts::{LoginInput, RegisterInput};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};

use crate::live::form::FormState;
use crate::live::header::Header;
use crate::live::layout::{Field, field, shell};
use crate::live::session::PageSession;

/// What differs between the two forms.
struct Kind {
    title: &'static str,
    heading: &'static str,
    /// Also the form's id prefix and the path it posts to.
    name: &'static str,
    submit: &'static str,
    /// (name, label, input type, autocomplete)
    fields: &'static [(&'static str, &'static str, &'static str, &'static str)],
    footer: fn() -> Rendered,
    /// The domain's validation of the typed values.
    validate: fn(&FormState) -> Result<(), DomainError>,
}

const SIGNUP: Kind = Kind {
    title: "Sign up",
    heading: "Create your account",
    name: "signup",
    submit: "Sign up",
    fields: &[
        ("email", "Email", "email", "email"),
        ("username", "Username", "text", "username"),
        ("password", "Password", "password", "new-password"),
    ],
    footer: || {
        html!(
            r#"<p class="text-sm mt-2">Have an account? <a class="link" href="/login">Log in</a></p>"#
        )
    },
    validate: |form| {
        fawkes_domain::validate(&RegisterInput {
            email: form.value("email").trim().to_owned(),
            username: form.value("username").trim().to_owned(),
            password: form.value("password").to_owned(),
            device_id: None,
            device_name: None,
        })
    },
};

const LOGIN: Kind = Kind {
    title: "Log in",
    heading: "Log in",
    name: "login",
    submit: "Log in",
    fields: &[
        ("login", "Email or username", "text", "username"),
        ("password", "Password", "password", "current-password"),
    ],
    footer: || {
        html!(
            r#"<p class="text-sm mt-2">New here? <a class="link" href="/signup">Create an account</a></p>"#
        )
    },
    validate: |form| {
        fawkes_domain::validate(&LoginInput {
            login: form.value("login").trim().to_owned(),
            password: form.value("password").to_owned(),
            device_id: None,
            device_name: None,
            device_info: None,
        })
    },
};

pub struct AuthView {
    kind: &'static Kind,
    form: FormState,
    trigger: bool,
    session: Option<PageSession>,
}

impl AuthView {
    pub fn signup() -> Self {
        Self::new(&SIGNUP)
    }

    pub fn login() -> Self {
        Self::new(&LOGIN)
    }

    fn new(kind: &'static Kind) -> Self {
        Self {
            kind,
            form: FormState::default(),
            trigger: false,
            session: None,
        }
    }
}

#[async_trait]
impl LiveView<PageSession> for AuthView {
    async fn mount(
        &mut self,
        s: &PageSession,
        _: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        if s.user.is_some() {
            return Err(Refusal::Redirect("/rooms".into()));
        }
        ctx.set_title(self.kind.title);
        self.session = Some(s.clone());
        Ok(())
    }

    async fn handle_event(&mut self, _: &PageSession, event: Event, _: &mut LiveContext) {
        let names: Vec<&str> = self.kind.fields.iter().map(|f| f.0).collect();
        self.form.update(&event, &names);
        self.form.set_result((self.kind.validate)(&self.form));
        self.trigger = event.name == "save" && self.form.is_valid();
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let kind = self.kind;
        let form = &self.form;
        let fields = List::keyed(
            kind.fields
                .iter()
                .map(|&(name, label, input, autocomplete)| {
                    let shown = field(Field {
                        name,
                        label,
                        kind: input,
                        value: form.value(name),
                        errors: form.errors(name),
                        autocomplete,
                    });
                    (name, shown)
                }),
        );
        let (csrf, heading, name, submit) =
            (session.csrf.as_str(), kind.heading, kind.name, kind.submit);
        let trigger = self.trigger.then_some("phx-trigger-action");
        let footer = (kind.footer)();
        let content = html!(
            r#"<div class="card bg-base-100 shadow w-full max-w-md mx-auto">
              <div class="card-body">
                <h1 class="card-title text-2xl">{heading}</h1>
                <form id="{name}-form" action="/{name}" method="post" phx-change="validate" phx-submit="save" {trigger}>
                  <input type="hidden" name="_csrf_token" value="{csrf}">
                  {fields}
                  <button type="submit" class="btn btn-primary w-full mt-4" id="{name}-submit">{submit}</button>
                </form>
                {footer}
              </div>
            </div>"#
        );
        shell(session, &Header::default(), flash, content)
    }
}
