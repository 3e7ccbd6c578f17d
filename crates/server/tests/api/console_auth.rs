//! Console sign-in through HTTP: password and TOTP (codes from the independent `pyotp`),
//! replay refusal, one-time recovery codes, lockout with back-off, CSRF, cookies and audit.

use std::process::Command;

use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use steward_domain::Timestamp;
use steward_server::console;
use steward_store::{Actor, ActorKind, AuditQuery, StoreExt, TenantCtx};

use crate::helpers::{TestApp, python, spawn_app, spawn_app_with};

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

/// Posts one sign-in per password, all at once, and returns each one's status in the same order.
async fn sign_in_burst(console: &Console<'_>, passwords: &[&str]) -> Vec<u16> {
    let (seed, csrf) = console.form().await;
    let mut tasks = tokio::task::JoinSet::new();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(passwords.len()));
    for (index, password) in passwords.iter().enumerate() {
        let http = console.app.http.clone();
        let url = console.app.url("/console/sign-in");
        let cookie = format!("steward_csrf={seed}");
        let form = [
            ("csrf", csrf.clone()),
            ("tenant", console.tenant.clone()),
            ("email", console.email.clone()),
            ("password", (*password).to_string()),
            ("code", String::new()),
        ];
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            let response = http.post(url).header(COOKIE, cookie).form(&form).send().await.unwrap();
            (index, response.status().as_u16())
        });
    }
    let mut statuses = vec![0; passwords.len()];
    while let Some(done) = tasks.join_next().await {
        let (index, status) = done.unwrap();
        statuses[index] = status;
    }
    statuses
}

fn reasons(log: &[(String, serde_json::Value)]) -> Vec<String> {
    log.iter()
        .filter(|(action, _)| action == "user.sign_in_failed")
        .map(|(_, detail)| detail["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn thirty_wrong_passwords_at_once_are_checked_five_times_and_the_rest_are_refused_as_locked() {
    let app = spawn_app().await;
    let (console, ctx) = Console::new(&app, "viewer").await;
    let statuses = sign_in_burst(&console, &["wrong password!!"; 30]).await;
    let log = actions(&app, &ctx).await;
    let reasons = reasons(&log);
    let checked = reasons.iter().filter(|r| *r == "wrong_password").count();
    let locked = reasons.iter().filter(|r| *r == "locked").count();
    assert_eq!((checked, locked), (5, 25), "{reasons:?}");
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let too_many = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((unauthorized, too_many), (4, 26), "the fifth checked attempt locks too: {statuses:?}");
    let record = app.store.users().get_user(&ctx, console_user_id(&app, &ctx).await).await.unwrap().unwrap();
    assert_eq!(record.failed_attempts, 5);
    assert!(record.locked_until.is_some());
    assert_eq!(console.sign_in(PASSWORD, "").await.status(), 429, "the right password waits for the lock too");
}

/// The only user of the console test tenant.
async fn console_user_id(app: &TestApp, ctx: &TenantCtx) -> steward_domain::UserId {
    let users = app.store.users().list_users(ctx).await.unwrap();
    assert_eq!(users.len(), 1);
    users[0].id
}

#[tokio::test]
async fn a_right_password_in_a_burst_of_wrong_ones_is_checked_only_among_the_free_attempts_and_lifts_no_lock() {
    let app = spawn_app().await;
    let (console, ctx) = Console::new(&app, "viewer").await;
    let mut passwords = vec!["wrong password!!"; 19];
    passwords.insert(9, PASSWORD);
    let statuses = sign_in_burst(&console, &passwords).await;
    let log = actions(&app, &ctx).await;
    let failed = reasons(&log);
    let wrong = failed.iter().filter(|r| *r == "wrong_password").count();
    let signed_in: Vec<_> = log.iter().filter(|(action, _)| action == "user.signed_in").collect();
    assert_eq!(wrong + signed_in.len(), 5, "five attempts checked, no more: {failed:?}");
    let record = app.store.users().get_user(&ctx, console_user_id(&app, &ctx).await).await.unwrap().unwrap();
    match statuses[9] {
        303 => {
            // Among the free five: it cleared the count only if no attempt was reserved after it.
            let attempt = signed_in[0].1["attempt"].as_u64().unwrap();
            assert!(attempt <= 5, "{attempt}");
            if attempt < 5 {
                assert_eq!((record.failed_attempts, record.locked_until.is_some()), (5, true), "{attempt}");
            }
        }
        status => {
            assert_eq!(status, 429, "{statuses:?}");
            assert!(signed_in.is_empty());
            assert_eq!((record.failed_attempts, record.locked_until.is_some()), (5, true));
        }
    }

    // A right password that arrives after the lock is not checked and resets nothing.
    let app = spawn_app().await;
    let (console, ctx) = Console::new(&app, "viewer").await;
    let statuses = sign_in_burst(&console, &["wrong password!!"; 19]).await;
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15);
    let late = console.sign_in(PASSWORD, "").await;
    assert_eq!(late.status(), 429);
    let record = app.store.users().get_user(&ctx, console_user_id(&app, &ctx).await).await.unwrap().unwrap();
    assert_eq!((record.failed_attempts, record.locked_until.is_some()), (5, true), "not reset");
    let log = actions(&app, &ctx).await;
    assert!(!log.iter().any(|(action, _)| action == "user.signed_in"));
    assert_eq!(reasons(&log).iter().filter(|r| *r == "wrong_password").count(), 5);
}

#[tokio::test]
async fn a_lock_holds_for_one_tenant_s_user_only_and_no_password_or_email_reaches_the_audit_log() {
    let app = spawn_app().await;
    let (console, ctx) = Console::new(&app, "viewer").await;
    // The same address in another tenant: its own user, with its own count.
    let other = app.tenant("Other Oy").await;
    let operator = Actor { kind: ActorKind::Operator, id: None };
    console::users::create_user(
        app.store.as_ref(),
        &other,
        &console.email,
        "viewer",
        PASSWORD,
        operator,
        Timestamp::now(),
    )
    .await
    .unwrap();
    let statuses = sign_in_burst(&console, &["wrong password!!"; 8]).await;
    assert!(statuses.contains(&429), "{statuses:?}");
    let mut elsewhere = Console { app: &app, tenant: "other-oy".into(), email: console.email.clone() };
    let response = elsewhere.sign_in(PASSWORD, "").await;
    assert_eq!(response.status(), 303, "the same address in another tenant is not locked");
    elsewhere.tenant = "no-such-tenant".into();
    assert_eq!(elsewhere.sign_in(PASSWORD, "").await.status(), 401);
    let entries = app.store.audit_entries(&ctx, &AuditQuery { limit: 1000, ..AuditQuery::default() }).await.unwrap();
    let text = serde_json::to_string(&entries.iter().map(|e| &e.detail).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains("wrong password") && !text.contains(&console.email), "{text}");
}

/// The enrolment page as a session sees it: its otpauth URI and CSRF token.
async fn enrol_page(console: &Console<'_>, session: &str) -> (String, String) {
    let response = console.get("/console/mfa/enrol", session).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    (element_text(&html, "otpauth-uri"), csrf_of(&html))
}

#[tokio::test]
async fn the_enrolment_page_shows_the_same_secret_on_reload_and_in_a_second_session_until_replaced_on_purpose() {
    let app = spawn_app().await;
    let (console, _) = Console::new(&app, "viewer").await;
    let session = |response: &reqwest::Response| set_cookie(response, "steward_session").expect("a session").0;
    let first = session(&console.sign_in(PASSWORD, "").await);
    let second = session(&console.sign_in(PASSWORD, "").await);
    let (uri, _) = enrol_page(&console, &first).await;
    let (reloaded, _) = enrol_page(&console, &first).await;
    let (other_tab, _) = enrol_page(&console, &second).await;
    assert_eq!(reloaded, uri, "a reload shows the secret already scanned");
    assert_eq!(other_tab, uri, "so does another session of the same user");

    // "Show a new code instead" replaces it; a code of the old one then confirms nothing.
    let (_, csrf) = enrol_page(&console, &second).await;
    let replaced = console.post("/console/mfa/enrol/new", &second, &[("csrf", &csrf)]).await;
    assert_eq!(replaced.status(), 303);
    let (new_uri, csrf) = enrol_page(&console, &first).await;
    assert_ne!(new_uri, uri);
    let stale = console.post("/console/mfa/enrol", &first, &[("csrf", &csrf), ("code", &pyotp_code(&app, &uri))]).await;
    assert_eq!(stale.status(), 422);
    assert!(stale.text().await.unwrap().contains("The code is wrong or has expired"));
    let code = pyotp_code(&app, &new_uri);
    let confirmed = console.post("/console/mfa/enrol", &first, &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed.text().await.unwrap().contains("recovery-codes"));
}

#[tokio::test]
async fn password_checks_run_one_at_a_time_when_so_configured_and_unknown_names_wait_in_the_same_line() {
    let mut settings = steward_server::Settings::default();
    settings.console.password_hashes_at_once = 1;
    settings.console.password_hash_wait_ms = 60_000;
    let app = spawn_app_with(settings).await;
    let (console, _) = Console::new(&app, "viewer").await;
    let unknown = Console { app: &app, tenant: "no-such-organization".into(), email: "nobody@example.org".into() };
    let (known, strangers) = tokio::join!(
        sign_in_burst(&console, &["wrong password!!"; 3]),
        sign_in_burst(&unknown, &["wrong password!!"; 5]),
    );
    assert_eq!(known, vec![401; 3]);
    assert_eq!(strangers, vec![401; 5]);
    assert_eq!(app.state.passwords.most_at_once(), 1, "never two hashes at once");
    assert_eq!(app.state.passwords.running(), 0);
}

#[tokio::test]
async fn a_sign_in_that_finds_no_turn_within_the_wait_is_503_with_retry_after_and_a_page() {
    let mut settings = steward_server::Settings::default();
    settings.console.password_hashes_at_once = 1;
    settings.console.password_hash_wait_ms = 100;
    let app = spawn_app_with(settings).await;
    let (console, ctx) = Console::new(&app, "viewer").await;
    let unknown = Console { app: &app, tenant: "no-such-organization".into(), email: "nobody@example.org".into() };
    // The only turn is taken (as by a long check): nothing else is hashed until it is back.
    let turn = app.state.passwords.turn().await.unwrap();
    for response in [console.sign_in(PASSWORD, "").await, unknown.sign_in("whatever it is", "").await] {
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(response.text().await.unwrap().contains("Too many sign-ins are being checked right now"));
    }
    drop(turn);
    assert_eq!(console.sign_in(PASSWORD, "").await.status(), 303);
    assert_eq!(app.state.passwords.most_at_once(), 1);
    // The refused attempts were never checked, so nothing was judged wrong.
    let log = actions(&app, &ctx).await;
    assert!(!log.iter().any(|(_, detail)| detail["reason"] == "wrong_password"), "{log:?}");
}
