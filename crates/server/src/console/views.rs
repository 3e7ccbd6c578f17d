//! The console's pages: maud templates, so every value is escaped unless marked otherwise.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use steward_domain::{Permission, Role, Timestamp, User};

/// The console's one style sheet, inline (the pages' policy allows inline styles and nothing
/// else). Colours keep at least 4.5:1 contrast; the layout is one column on a phone.
const STYLE: &str = r#"
:root{--ink:#1a1a1a;--muted:#4a4a4a;--line:#c8c8c8;--accent:#0b57a4;--bad:#a00000;--good:#17612b;--bg:#fff;--soft:#f2f4f7}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
a{color:var(--accent)}
a:focus,button:focus,input:focus,select:focus,summary:focus{outline:3px solid #f4b400;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px;z-index:2}
header.top{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;padding:.5rem 1rem;background:var(--soft);border-bottom:1px solid var(--line)}
header.top form{display:inline}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem .75rem}
nav a{display:inline-block;padding:.25rem .1rem}
nav a[aria-current=page]{font-weight:700;text-decoration:none;border-bottom:3px solid var(--accent)}
main{padding:1rem;max-width:72rem;margin:0 auto}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.75rem;margin:0;padding:0;list-style:none}
.cards li{border:1px solid var(--line);border-radius:6px;padding:.75rem}
.cards strong{display:block;font-size:1.6rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--soft)}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin:.5rem 0 1rem}
label{display:inline-flex;flex-direction:column;gap:.15rem;font-weight:600}
label.inline{flex-direction:row;align-items:center;gap:.4rem;font-weight:400}
input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid #767676;border-radius:4px;min-height:2.25rem}
button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}
button.danger{background:var(--bad);border-color:var(--bad)}
button.quiet{background:#fff;color:var(--accent)}
[role=alert]{border-left:4px solid var(--bad);background:#fdecec;padding:.5rem .75rem}
.ok{border-left:4px solid var(--good);background:#e9f5ec;padding:.5rem .75rem}
.muted{color:var(--muted)}
.chart{max-width:100%;height:auto}
ol.timeline{list-style:none;padding-left:0;border-left:3px solid var(--line);margin-left:.5rem}
ol.timeline>li{margin:0 0 1rem 0;padding-left:1rem}
ol.timeline ol{padding-left:1.25rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
progress{width:10rem}
@media (max-width:40rem){main{padding:.5rem}dl.facts{grid-template-columns:1fr}}
"#;

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Steward" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The signed-in user as every page's frame shows them, and the page being shown.
pub struct Chrome<'a> {
    pub email: &'a str,
    pub role: Role,
    pub csrf: &'a str,
    /// The path of the nav entry to mark as current.
    pub current: &'a str,
    /// Reload the page after this many seconds (while export jobs run).
    pub refresh: Option<u32>,
}

/// The navigation: an entry only for what the role may do (the handlers check again).
const NAV: &[(&str, &str, Permission)] = &[
    ("/console", "Overview", Permission::ReadReports),
    ("/console/leads", "Leads", Permission::ReadRecords),
    ("/console/organizations", "Organizations", Permission::ReadRecords),
    ("/console/visitors", "Visitors", Permission::ReadRecords),
    ("/console/exports", "Exports", Permission::ExportReports),
    ("/console/data-subjects", "Data subjects", Permission::AnswerDataSubjectRequests),
    ("/console/retention", "Retention", Permission::ManageRetention),
    ("/console/audit", "Audit log", Permission::ReadAudit),
    ("/console/users", "Users", Permission::ManageUsers),
    ("/console/clients", "API clients", Permission::ManageClients),
    ("/console/switching", "Switching", Permission::ManageSwitching),
];

/// A page of the signed-in console: skip link, header with navigation and sign-out, the body.
pub fn shell(chrome: &Chrome<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Steward" }
                style { (PreEscaped(STYLE)) }
                @if let Some(seconds) = chrome.refresh { meta http-equiv="refresh" content=(seconds); }
            }
            body {
                a.skip href="#content" { "Skip to content" }
                header.top {
                    nav aria-label="Console" {
                        ul {
                            @for (href, label, permission) in NAV {
                                @if chrome.role.can(*permission) {
                                    li {
                                        @if *href == chrome.current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                            li { a href="/data-register" { "Public data register" } }
                        }
                    }
                    div {
                        a href="/console/account" id="who" { (chrome.email) } " (" span id="role" { (chrome.role.as_str()) } ") "
                        (sign_out_form(chrome.csrf))
                    }
                }
                main id="content" { h1 { (title) } (body) }
            }
        }
    }
}

/// What a permission lets a user do, for refusal messages.
pub fn permission_text(permission: Permission) -> &'static str {
    match permission {
        Permission::ReadRecords => "browse leads, organizations and visitors",
        Permission::ReadReports => "read reports",
        Permission::EditRecords => "change records",
        Permission::ExportReports => "export data",
        Permission::ExportPersonalData => {
            "export personal data (leads, visitors, journeys, organizations, the audit log)"
        }
        Permission::AnswerDataSubjectRequests => "answer data-subject requests",
        Permission::ReadAudit => "read the audit log",
        Permission::ManageUsers => "manage users",
        Permission::ManageClients => "manage API clients",
        Permission::ManageRetention => "manage retention and legal holds",
        Permission::ManageSwitching => "start a provider switch",
    }
}

/// A timestamp as people read it: `2026-11-30 14:05 UTC`.
pub fn when(at: Timestamp) -> String {
    let t = at.as_datetime();
    format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute())
}

/// A date as people read it.
pub fn day(at: Timestamp) -> String {
    at.as_datetime().date().to_string()
}

/// An optional text, or a dash.
pub fn or_dash(text: Option<&str>) -> &str {
    text.filter(|t| !t.is_empty()).unwrap_or("–")
}

/// A confirmation or error message of a form.
pub fn notice(ok: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = error { p role="alert" id="message" { (text) } }
        @if let Some(text) = ok { p.ok role="status" id="message" { (text) } }
    }
}

/// A refusal or a missing page, with a way back.
pub fn refusal(title: &str, detail: &str) -> Markup {
    layout(title, html! { p role="alert" id="message" { (detail) } p { a href="/console" { "Back to the console" } } })
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
            form method="post" action="/console/mfa/enrol/new" {
                input type="hidden" name="csrf" value=(page.csrf);
                p.muted { "The same code is shown until you confirm it, on reloads and in other tabs. Lost it before confirming? " }
                button.quiet type="submit" id="new-secret" { "Show a new code instead" }
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

pub fn home(chrome: &Chrome<'_>, user: &User, tenant_name: &str, recovery_codes_left: u32) -> Markup {
    shell(
        chrome,
        "Your account",
        html! {
            p { "Signed in as " strong { (user.email.as_str()) } " (" (user.role.as_str()) ") in " (tenant_name) "." }
            p { "Recovery codes left: " (recovery_codes_left) }
            h2 { "What your role may do" }
            ul id="permissions" {
                @for permission in Permission::ALL {
                    @if user.role.can(*permission) { li { (permission_text(*permission)) } }
                }
            }
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
