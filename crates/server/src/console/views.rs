//! The console's pages: maud templates, so every value is escaped unless marked otherwise.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use steward_domain::{Permission, User};

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Steward" }
            }
            body {
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn message(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p role="alert" id="message" { (text) }
        }
    }
}

pub struct SignIn<'a> {
    pub csrf: &'a str,
    pub tenant: &'a str,
    pub email: &'a str,
    pub message: Option<&'a str>,
}

pub fn sign_in(page: &SignIn<'_>) -> Markup {
    layout(
        "Sign in",
        html! {
            (message(page.message))
            form method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(page.csrf);
                p { label { "Organisation " input name="tenant" required value=(page.tenant) autocomplete="organization"; } }
                p { label { "Email " input name="email" type="email" required value=(page.email) autocomplete="username"; } }
                p { label { "Password " input name="password" type="password" required autocomplete="current-password"; } }
                p { label { "Code from your authenticator app, or a recovery code " input name="code" autocomplete="one-time-code" inputmode="numeric"; } }
                p { small { "Signing in for the first time? Leave the code empty: you will set up an authenticator app next." } }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub struct Enrol<'a> {
    pub csrf: &'a str,
    pub uri: &'a str,
    pub secret: &'a str,
    /// SVG made by `qrcode` from the URI: markup we generated, not user input.
    pub qr_svg: &'a str,
    pub message: Option<&'a str>,
}

pub fn enrol(page: &Enrol<'_>) -> Markup {
    layout(
        "Set up two-step sign-in",
        html! {
            (message(page.message))
            p { "Scan this code with an authenticator app (or enter the key below), then type the six-digit code it shows." }
            div id="qr" { (PreEscaped(page.qr_svg)) }
            p { "Key: " code id="totp-secret" { (page.secret) } }
            p { "Link: " code id="otpauth-uri" { (page.uri) } }
            form method="post" action="/console/mfa/enrol" {
                input type="hidden" name="csrf" value=(page.csrf);
                p { label { "Code " input name="code" required autocomplete="one-time-code" inputmode="numeric"; } }
                button type="submit" { "Confirm" }
            }
            (sign_out_form(page.csrf))
        },
    )
}

pub fn recovery_codes(codes: &[String]) -> Markup {
    layout(
        "Two-step sign-in is on",
        html! {
            p { "Save these recovery codes somewhere safe. Each signs you in once if you lose your authenticator; they are shown only now." }
            ul id="recovery-codes" { @for code in codes { li { code { (code) } } } }
            p { a href="/console" { "Continue to the console" } }
        },
    )
}

pub fn home(user: &User, tenant_name: &str, csrf: &str, recovery_codes_left: u32) -> Markup {
    layout(
        "Console",
        html! {
            p id="who" { "Signed in as " strong { (user.email.as_str()) } " (" span id="role" { (user.role.as_str()) } ") in " (tenant_name) "." }
            p { "Recovery codes left: " (recovery_codes_left) }
            h2 { "What your role may do" }
            ul id="permissions" {
                @for permission in Permission::ALL {
                    @if user.role.can(*permission) { li { (format!("{permission:?}")) } }
                }
            }
            (sign_out_form(csrf))
        },
    )
}

fn sign_out_form(csrf: &str) -> Markup {
    html! {
        form method="post" action="/console/sign-out" {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { "Sign out" }
        }
    }
}

pub fn problem(title: &str, detail: &str) -> Markup {
    layout(
        title,
        html! { p role="alert" id="message" { (detail) } p { a href="/console/sign-in" { "Back to sign-in" } } },
    )
}
