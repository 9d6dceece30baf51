//! Sign-up and log-in. The forms validate on change through the live socket with the domain's
//! rules; a valid submit then posts the form over plain HTTP (`phx-trigger-action`), because
//! only an HTTP response can set the sign-in cookie.

use async_trait::async_trait;
use fawkes_domain::accounts::{LoginInput, RegisterInput};
use fawkes_live::{Event, Flash, LiveContext, LiveView, Params, Refusal, Rendered, html};

use crate::live::form::FormState;
use crate::live::layout::{Field, field, shell};
use crate::live::session::PageSession;

#[derive(Default)]
pub struct SignupView {
    form: FormState,
    trigger: bool,
    session: Option<PageSession>,
}

const SIGNUP_FIELDS: [&str; 3] = ["email", "username", "password"];

fn register_input(form: &FormState) -> RegisterInput {
    RegisterInput {
        email: form.value("email").trim().to_owned(),
        username: form.value("username").trim().to_owned(),
        password: form.value("password").to_owned(),
        device_id: None,
        device_name: None,
    }
}

#[async_trait]
impl LiveView<PageSession> for SignupView {
    async fn mount(
        &mut self,
        s: &PageSession,
        _: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        if s.user.is_some() {
            return Err(Refusal::Redirect("/rooms".into()));
        }
        ctx.set_title("Sign up");
        self.session = Some(s.clone());
        Ok(())
    }

    async fn handle_event(&mut self, _: &PageSession, event: Event, _: &mut LiveContext) {
        self.form.update(&event, &SIGNUP_FIELDS);
        self.form
            .set_result(fawkes_domain::validate(&register_input(&self.form)));
        self.trigger = event.name == "save" && self.form.is_valid();
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let form = &self.form;
        let csrf = session.csrf.as_str();
        let trigger = self.trigger.then_some("phx-trigger-action");
        let email = field(Field {
            name: "email",
            label: "Email",
            kind: "email",
            value: form.value("email"),
            errors: form.errors("email"),
            autocomplete: "email",
        });
        let username = field(Field {
            name: "username",
            label: "Username",
            kind: "text",
            value: form.value("username"),
            errors: form.errors("username"),
            autocomplete: "username",
        });
        let password = field(Field {
            name: "password",
            label: "Password",
            kind: "password",
            value: form.value("password"),
            errors: form.errors("password"),
            autocomplete: "new-password",
        });
        let content = html!(
            r#"<div class="card bg-base-100 shadow w-full max-w-md mx-auto">
              <div class="card-body">
                <h1 class="card-title text-2xl">Create your account</h1>
                <form id="signup-form" action="/signup" method="post" phx-change="validate" phx-submit="save" {trigger}>
                  <input type="hidden" name="_csrf_token" value="{csrf}">
                  {email}{username}{password}
                  <button type="submit" class="btn btn-primary w-full mt-4" id="signup-submit">Sign up</button>
                </form>
                <p class="text-sm mt-2">Have an account? <a class="link" href="/login">Log in</a></p>
              </div>
            </div>"#
        );
        shell(session, flash, content)
    }
}

#[derive(Default)]
pub struct LoginView {
    form: FormState,
    trigger: bool,
    session: Option<PageSession>,
}

const LOGIN_FIELDS: [&str; 2] = ["login", "password"];

#[async_trait]
impl LiveView<PageSession> for LoginView {
    async fn mount(
        &mut self,
        s: &PageSession,
        _: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        if s.user.is_some() {
            return Err(Refusal::Redirect("/rooms".into()));
        }
        ctx.set_title("Log in");
        self.session = Some(s.clone());
        Ok(())
    }

    async fn handle_event(&mut self, _: &PageSession, event: Event, _: &mut LiveContext) {
        self.form.update(&event, &LOGIN_FIELDS);
        let input = LoginInput {
            login: self.form.value("login").trim().to_owned(),
            password: self.form.value("password").to_owned(),
            device_id: None,
            device_name: None,
            device_info: None,
        };
        self.form.set_result(fawkes_domain::validate(&input));
        self.trigger = event.name == "save" && self.form.is_valid();
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let form = &self.form;
        let csrf = session.csrf.as_str();
        let trigger = self.trigger.then_some("phx-trigger-action");
        let login = field(Field {
            name: "login",
            label: "Email or username",
            kind: "text",
            value: form.value("login"),
            errors: form.errors("login"),
            autocomplete: "username",
        });
        let password = field(Field {
            name: "password",
            label: "Password",
            kind: "password",
            value: form.value("password"),
            errors: form.errors("password"),
            autocomplete: "current-password",
        });
        let content = html!(
            r#"<div class="card bg-base-100 shadow w-full max-w-md mx-auto">
              <div class="card-body">
                <h1 class="card-title text-2xl">Log in</h1>
                <form id="login-form" action="/login" method="post" phx-change="validate" phx-submit="save" {trigger}>
                  <input type="hidden" name="_csrf_token" value="{csrf}">
                  {login}{password}
                  <button type="submit" class="btn btn-primary w-full mt-4" id="login-submit">Log in</button>
                </form>
                <p class="text-sm mt-2">New here? <a class="link" href="/signup">Create an account</a></p>
              </div>
            </div>"#
        );
        shell(session, flash, content)
    }
}
