//! Console sign-in through HTTP: password and TOTP (codes from the independent `pyotp`),
//! replay refusal, one-time recovery codes, lockout with back-off, CSRF, cookies and audit.

use std::process::Command;

use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use steward_domain::Timestamp;
use steward_server::console;
use steward_store::{Actor, ActorKind, AuditQuery, StoreExt, TenantCtx};

use crate::helpers::{TestApp, python, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

/// The first `name="csrf" value="…"` of a page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

fn element_text(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\">")).unwrap_or_else(|| panic!("no #{id} in {html}")) + id.len() + 6;
    html[start..].split('<').next().unwrap().replace("&amp;", "&").replace("&quot;", "\"")
}

/// The value a response sets for a cookie, and the whole `Set-Cookie` line.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        let value = line.strip_prefix(&format!("{name}="))?.split(';').next()?.to_string();
        Some((value, line.to_string()))
    })
}

/// The code `pyotp` computes from the enrolment URI for the app's (fixed) clock.
fn pyotp_code(app: &TestApp, uri: &str) -> String {
    let at = app.state.clock.now().unix_micros() / 1_000_000;
    let output = Command::new(python())
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))",
            uri,
            &at.to_string(),
        ])
        .output()
        .expect("run pyotp");
    assert!(output.status.success(), "pyotp failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

struct Console<'a> {
    app: &'a TestApp,
    tenant: String,
    email: String,
}

impl<'a> Console<'a> {
    async fn new(app: &'a TestApp, role: &str) -> (Self, TenantCtx) {
        let ctx = app.tenant("Acme Oy").await;
        let email = format!("admin.{}@acme.fi", uuid::Uuid::now_v7().simple());
        let operator = Actor { kind: ActorKind::Operator, id: None };
        console::users::create_user(app.store.as_ref(), &ctx, &email, role, PASSWORD, operator, Timestamp::now())
            .await
            .expect("user");
        (Self { app, tenant: "acme-oy".into(), email }, ctx)
    }

    /// A sign-in form: its CSRF cookie seed and token.
    async fn form(&self) -> (String, String) {
        let response = self.app.http.get(self.app.url("/console/sign-in")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let (seed, line) = set_cookie(&response, "steward_csrf").expect("a CSRF cookie");
        assert!(line.contains("HttpOnly") && line.contains("SameSite=Strict"), "{line}");
        (seed, csrf_of(&response.text().await.unwrap()))
    }

    async fn sign_in(&self, password: &str, code: &str) -> reqwest::Response {
        let (seed, csrf) = self.form().await;
        self.post_sign_in(&seed, &csrf, password, code, &[]).await
    }

    async fn post_sign_in(
        &self,
        seed: &str,
        csrf: &str,
        password: &str,
        code: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request =
            self.app.http.post(self.app.url("/console/sign-in")).header(COOKIE, format!("steward_csrf={seed}"));
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let form =
            [("csrf", csrf), ("tenant", &self.tenant), ("email", &self.email), ("password", password), ("code", code)];
        request.form(&form).send().await.unwrap()
    }

    async fn get(&self, path: &str, session: &str) -> reqwest::Response {
        let cookie = format!("steward_session={session}");
        self.app.http.get(self.app.url(path)).header(COOKIE, cookie).send().await.unwrap()
    }

    async fn post(&self, path: &str, session: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let cookie = format!("steward_session={session}");
        self.app.http.post(self.app.url(path)).header(COOKIE, cookie).form(form).send().await.unwrap()
    }

    /// Signs in with the password alone, enrols TOTP with a pyotp code, and returns the new
    /// session, the otpauth URI and the recovery codes.
    async fn enrol(&self) -> (String, String, Vec<String>) {
        let response = self.sign_in(PASSWORD, "").await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()[LOCATION], "/console/mfa/enrol");
        let (session, _) = set_cookie(&response, "steward_session").expect("a session");
        let page = self.get("/console/mfa/enrol", &session).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("<svg"), "a QR code");
        let uri = element_text(&html, "otpauth-uri");
        assert!(uri.starts_with("otpauth://totp/Steward:"), "{uri}");
        let code = pyotp_code(self.app, &uri);
        let confirmed = self.post("/console/mfa/enrol", &session, &[("csrf", &csrf_of(&html)), ("code", &code)]).await;
        assert_eq!(confirmed.status(), 200);
        let (session, _) = set_cookie(&confirmed, "steward_session").expect("a new session after enrolment");
        let html = confirmed.text().await.unwrap();
        let codes: Vec<String> =
            html.split("<li><code>").skip(1).map(|part| part.split('<').next().unwrap().to_string()).collect();
        assert_eq!(codes.len(), 10, "{html}");
        (session, uri, codes)
    }
}

async fn actions(app: &TestApp, ctx: &TenantCtx) -> Vec<(String, serde_json::Value)> {
    let query = AuditQuery { limit: 1000, action: Some("user.".into()), ..AuditQuery::default() };
    let entries = app.store.audit_entries(ctx, &query).await.unwrap();
    entries.into_iter().map(|entry| (entry.action, entry.detail)).collect()
}

#[tokio::test]
async fn a_pyotp_code_signs_in_once_and_a_recovery_code_works_once() {
    let app = spawn_app().await;
    let (console, ctx) = Console::new(&app, "admin").await;
    let (enrolled_session, uri, recovery) = console.enrol().await;
    let home = console.get("/console", &enrolled_session).await;
    assert_eq!(home.status(), 200);

    // The enrolment code's step is used up: the next sign-in takes the next code.
    app.state.clock.advance(time::Duration::seconds(30));
    let code = pyotp_code(&app, &uri);
    let response = console.sign_in(PASSWORD, &code).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/console");
    let (session, line) = set_cookie(&response, "steward_session").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attribute), "{attribute} missing: {line}");
    }
    assert!(!line.contains("Secure"), "plain HTTP: {line}");
    let home = console.get("/console", &session).await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(html.contains(&console.email), "{html}");
    assert_eq!(element_text(&html, "role"), "admin");

    let replayed = console.sign_in(PASSWORD, &code).await;
    assert_eq!(replayed.status(), 401);
    assert!(replayed.text().await.unwrap().contains("already been used"));

    let by_recovery = console.sign_in(PASSWORD, &recovery[3].to_uppercase()).await;
    assert_eq!(by_recovery.status(), 303, "a recovery code, however typed");
    let again = console.sign_in(PASSWORD, &recovery[3]).await;
    assert_eq!(again.status(), 401);
    assert!(again.text().await.unwrap().contains("The code is wrong"));

    let log = actions(&app, &ctx).await;
    let names: Vec<&str> = log.iter().map(|(action, _)| action.as_str()).collect();
    assert_eq!(
        names,
        [
            "user.created",
            "user.signed_in",
            "user.mfa_enrolled",
            "user.signed_in",
            "user.sign_in_failed",
            "user.signed_in",
            "user.sign_in_failed"
        ]
    );
    assert_eq!(log[3].1["method"], "totp");
    assert_eq!(log[4].1["reason"], "replayed_code");
    assert_eq!(log[5].1["method"], "recovery_code");
    assert_eq!(log[5].1["recovery_codes_left"], 9);
    assert_eq!(log[6].1["reason"], "wrong_recovery_code");
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(PASSWORD) && !text.contains(&code), "no secret reaches the audit log");
    // Console entries carry the browser's network, masked, like the API's.
    let query = AuditQuery { limit: 1000, action: Some("user.".into()), ..AuditQuery::default() };
    let entries = app.store.audit_entries(&ctx, &query).await.unwrap();
    let signs: Vec<_> = entries.into_iter().filter(|e| e.action.starts_with("user.sign")).collect();
    assert_eq!(signs.len(), 5);
    for entry in signs {
        assert_eq!(entry.ip_network.map(|n| n.to_string()).as_deref(), Some("127.0.0.0/24"), "{}", entry.action);
    }
}

#[tokio::test]
async fn five_failures_lock_the_account_until_the_back_off_has_passed() {
    let app = spawn_app().await;
    let (console, ctx) = Console::new(&app, "viewer").await;
    for attempt in 1..=4 {
        let response = console.sign_in("wrong password!!", "").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let fifth = console.sign_in("wrong password!!", "").await;
    assert_eq!(fifth.status(), 429);
    assert_eq!(fifth.headers()[RETRY_AFTER], "60");
    assert!(fifth.text().await.unwrap().contains("locked"));
    let right_but_locked = console.sign_in(PASSWORD, "").await;
    assert_eq!(right_but_locked.status(), 429, "the lock holds even for the right password");

    app.state.clock.advance(time::Duration::seconds(61));
    let (seed, csrf) = console.form().await;
    let response = console.post_sign_in(&seed, &csrf, PASSWORD, "", &[("x-forwarded-proto", "https")]).await;
    assert_eq!(response.status(), 303);
    let (_, line) = set_cookie(&response, "steward_session").unwrap();
    assert!(line.contains("; Secure"), "Secure under TLS: {line}");

    let log = actions(&app, &ctx).await;
    let failures: Vec<_> = log.iter().filter(|(action, _)| action == "user.sign_in_failed").collect();
    assert_eq!(failures.len(), 6);
    assert_eq!(failures[0].1["reason"], "wrong_password");
    assert_eq!(failures[4].1["locked_for_seconds"], 60);
    assert_eq!(failures[5].1["reason"], "locked");
    assert_eq!(log.last().unwrap().0, "user.signed_in");
}

#[tokio::test]
async fn an_unknown_email_is_answered_like_a_wrong_password() {
    let app = spawn_app().await;
    let (mut console, _) = Console::new(&app, "analyst").await;
    let wrong = console.sign_in("wrong password!!", "").await;
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    console.email = "nobody@acme.fi".into();
    let unknown = console.sign_in(PASSWORD, "").await;
    assert_eq!(unknown.status(), 401);
    let unknown = unknown.text().await.unwrap();
    assert_eq!(element_text(&wrong, "message"), element_text(&unknown, "message"));
    assert!(element_text(&unknown, "message").contains("email address or password is wrong"));
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let app = spawn_app().await;
    let (console, _) = Console::new(&app, "owner").await;
    let (seed, csrf) = console.form().await;
    assert_eq!(console.post_sign_in(&seed, "", PASSWORD, "", &[]).await.status(), 403);
    assert_eq!(console.post_sign_in(&seed, "forged", PASSWORD, "", &[]).await.status(), 403);
    let (other_seed, _) = console.form().await;
    assert_eq!(console.post_sign_in(&other_seed, &csrf, PASSWORD, "", &[]).await.status(), 403, "another cookie");

    let (session, _, _) = console.enrol().await;
    let page = console.get("/console", &session).await.text().await.unwrap();
    let csrf = csrf_of(&page);
    let forged = console.post("/console/sign-out", &session, &[("csrf", "forged")]).await;
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("Reload"));
    assert_eq!(console.post("/console/sign-out", &session, &[]).await.status(), 403);
    assert_eq!(console.get("/console", &session).await.status(), 200, "still signed in");
    let out = console.post("/console/sign-out", &session, &[("csrf", &csrf)]).await;
    assert_eq!(out.status(), 303);
    assert!(set_cookie(&out, "steward_session").unwrap().1.contains("Max-Age=0"));
    let after = console.get("/console", &session).await;
    assert_eq!((after.status().as_u16(), &after.headers()[LOCATION]), (303, &"/console/sign-in".parse().unwrap()));
}

#[tokio::test]
async fn a_password_only_session_reaches_nothing_but_enrolment() {
    let app = spawn_app().await;
    let (console, _) = Console::new(&app, "admin").await;
    let response = console.sign_in(PASSWORD, "").await;
    let (session, _) = set_cookie(&response, "steward_session").unwrap();
    let home = console.get("/console", &session).await;
    assert_eq!(home.status(), 303);
    assert_eq!(home.headers()[LOCATION], "/console/mfa/enrol");
    let page = console.get("/console/mfa/enrol", &session).await;
    let html = page.text().await.unwrap();
    let wrong = console.post("/console/mfa/enrol", &session, &[("csrf", &csrf_of(&html)), ("code", "000000")]).await;
    assert_eq!(wrong.status(), 422);
    assert!(wrong.text().await.unwrap().contains("The code is wrong"));
    assert_eq!(console.get("/console", "not-a-session").await.headers()[LOCATION], "/console/sign-in");
}
