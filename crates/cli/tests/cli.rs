//! The `steward` command as a person or a script uses it: `--json` output, the demo, errors.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_steward");

/// A data folder, and on the PostgreSQL run a fresh schema, for one test.
struct Env {
    dir: tempfile::TempDir,
    database: Option<String>,
}

impl Env {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = match std::env::var("STEWARD_TEST_BACKEND").as_deref() {
            Ok("postgres") => {
                let url = std::env::var("STEWARD_TEST_POSTGRES_URL").expect("STEWARD_TEST_POSTGRES_URL");
                let schema = format!("cli_{}", uuid_like());
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&pool).await.unwrap();
                let separator = if url.contains('?') { '&' } else { '?' };
                Some(format!("{url}{separator}options=-c%20search_path%3D{schema}"))
            }
            _ => None,
        };
        Self { dir, database }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command.env_remove("STEWARD_DATABASE_URL").arg("--data-dir").arg(self.dir.path());
        if let Some(url) = &self.database {
            command.arg("--database").arg(url);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run steward")
    }

    /// Runs a `--json` command and returns the one object it printed.
    fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "--json prints exactly one line: {stdout}");
        serde_json::from_str(&stdout).unwrap()
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{nanos:x}{}", std::process::id())
}

#[tokio::test]
async fn tenant_site_and_client_commands_print_one_json_object() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    assert_eq!(tenant["name"], "Acme Oy");
    let tenant_id = tenant["id"].as_str().unwrap();
    assert_eq!(tenant_id.len(), 36);

    let site = env.json(&["site", "add", "--tenant", tenant_id, "--domain", "WWW.Acme.fi", "--json"]);
    assert_eq!(site["domain"], "www.acme.fi");
    assert!(site["site_key"].as_str().unwrap().starts_with("site_"));

    let narrow = env.json(&["client", "create", "--tenant", tenant_id, "--scopes", "leads:read,export", "--json"]);
    assert_eq!(narrow["scopes"], serde_json::json!(["leads:read", "export"]));
    assert!(narrow["client_secret"].as_str().unwrap().starts_with("stw_cs_"));
    let all = env.json(&["client", "create", "--tenant", tenant_id, "--json"]);
    assert_eq!(all["scopes"].as_array().unwrap().len(), steward_domain::Scope::ALL.len());

    let listed = env.json(&["tenant", "list", "--json"]);
    assert_eq!(listed["tenants"][0]["id"], tenant["id"]);
}

#[tokio::test]
async fn mistakes_exit_non_zero_with_a_message_and_print_nothing_on_stdout() {
    let env = Env::new().await;
    let cases: [&[&str]; 4] = [
        &["site", "add", "--tenant", "0190b8c2-0000-7000-8000-000000000000", "--domain", "acme.fi", "--json"],
        &["client", "create", "--tenant", "nope", "--json"],
        &["tenant", "create", "   ", "--json"],
        &["client", "create", "--tenant", "0190b8c2-0000-7000-8000-000000000000", "--scopes", "root", "--json"],
    ];
    for args in cases {
        let output = env.run(args);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    let tenant = env.json(&["tenant", "create", "Acme", "--json"]);
    let bad_domain =
        env.run(&["site", "add", "--tenant", tenant["id"].as_str().unwrap(), "--domain", "https://x", "--json"]);
    assert!(String::from_utf8_lossy(&bad_domain.stderr).contains("host name"));
}

#[test]
fn config_default_prints_the_documented_file() {
    let output = Command::new(BIN).args(["config", "default"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text, steward_server::config::DEFAULT_TOML);
    assert!(text.contains("rate_limit_per_minute = 500"));
}

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// The README's first command, on a small size: it prints a URL and credentials that work,
/// and paging through every lead with `next_cursor` returns each exactly once.
#[tokio::test]
async fn the_demo_prints_a_url_and_credentials_that_list_every_lead() {
    let env = Env::new().await;
    let mut child = env
        .command()
        .args(["demo", "--listen", "127.0.0.1:0", "--size", "0.05"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let demo = Demo(child);
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("Press Ctrl+C");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    if !lines.last().is_some_and(|l| l.starts_with("Press Ctrl+C")) {
        let mut errors = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut errors).unwrap();
        panic!("the demo stopped before serving: {lines:?}\n{errors}");
    }
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let value = |label: &str| -> String {
        let line = lines
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {lines:?}"));
        line.split_once(label).unwrap().1.trim().to_string()
    };
    let url = lines[0].rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{lines:?}");
    let (client_id, secret) = (value("client_id:"), value("client_secret:"));
    let leads: usize = value("Tenant:").rsplit_once(", ").unwrap().1.trim_end_matches(" leads").parse().unwrap();
    assert!(leads > 50, "the demo seeds leads: {leads}");
    assert!(lines.iter().any(|l| l.contains("curl")), "a ready curl line");

    // The printed console credentials sign in (first sign-in: on to TOTP enrolment).
    let (email, password) = (value("email:"), value("password:"));
    let slug = lines.iter().find_map(|l| l.split_once("(organisation ")).unwrap().1.trim_end_matches("):").to_string();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = browser.get(format!("{url}/console/sign-in")).send().await.unwrap();
    let seed = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = form.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let signed_in = browser
        .post(format!("{url}/console/sign-in"))
        .header("cookie", seed)
        .form(&[("csrf", csrf.as_str()), ("tenant", &slug), ("email", &email), ("password", &password), ("code", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "the demo's console credentials sign in");
    assert!(signed_in.headers()["location"].to_str().unwrap().contains("/console/mfa/enrol"));

    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{url}/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = http.get(format!("{url}/api/v1/leads")).bearer_auth(&token).query(&[("limit", "37")]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let page: Value = request.send().await.unwrap().json().await.unwrap();
        for lead in page["data"].as_array().unwrap() {
            assert!(seen.insert(lead["id"].as_str().unwrap().to_string()), "a lead came twice");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), leads, "every lead exactly once");
    drop(demo);
}

#[tokio::test]
async fn audit_verify_reports_a_valid_chain_and_names_a_tampered_entry() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    for _ in 0..3 {
        env.json(&["client", "create", "--tenant", tenant_id, "--json"]);
    }
    let verdict = env.json(&["audit", "verify", "--tenant", tenant_id, "--json"]);
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["entries"], 3, "each client creation is an operator entry: {verdict}");
    assert_eq!(verdict["head_seq"], 3);

    // Someone with the database changes entry 2 (after removing the append-only guard).
    let statements = [
        "DROP TRIGGER IF EXISTS audit_log_append_only".to_string(),
        "UPDATE audit_log SET actor_kind = 'user' WHERE seq = 2".to_string(),
    ];
    match &env.database {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let drop = "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log";
            sqlx::query(drop).execute(&pool).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(statements[1].clone())).execute(&pool).await.unwrap();
        }
        None => {
            let url = format!("sqlite://{}", env.dir.path().join("steward.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            for statement in &statements {
                sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&pool).await.unwrap();
            }
        }
    }
    let output = env.run(&["audit", "verify", "--tenant", tenant_id, "--json"]);
    assert!(!output.status.success(), "a broken chain exits non-zero");
    let verdict: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["broken_seq"], 2);
    let human = env.run(&["audit", "verify", "--tenant", tenant_id]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("BROKEN: entry 2 was changed"));
}

/// Serves the API in this process over the database an [`Env`] points the commands at, so the
/// credentials a command prints are tried at the real `/oauth/token`.
async fn serve(env: &Env) -> String {
    let settings = steward_server::Settings {
        data_dir: env.dir.path().to_path_buf(),
        database_url: env.database.clone().unwrap_or_default(),
        ..Default::default()
    };
    let store = steward_server::open_store(&settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = steward_server::AppState::new(store, settings);
    tokio::spawn(async move { steward_server::serve(listener, state, std::future::pending()).await.unwrap() });
    url
}

/// The status of a client-credentials token request, and the token when one is issued.
async fn token(url: &str, id: &str, secret: &str) -> (u16, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["access_token"].as_str().map(str::to_string))
}

async fn leads_status(url: &str, token: &str) -> u16 {
    let response = reqwest::Client::new().get(format!("{url}/api/v1/leads")).bearer_auth(token).send().await.unwrap();
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_secret_refuses_the_old_secret_and_revoke_tokens_ends_issued_tokens() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let created = env.json(&["client", "create", "--tenant", tenant_id, "--scopes", "leads:read", "--json"]);
    let id = created["client_id"].as_str().unwrap();
    let old_secret = created["client_secret"].as_str().unwrap();
    let url = serve(&env).await;
    let (_, Some(old_token)) = token(&url, id, old_secret).await else { panic!("the new client gets a token") };

    // A planned rotation: the old secret gets no new token, tokens already issued keep working.
    let rotated = env.json(&["client", "rotate-secret", "--tenant", tenant_id, "--client", id, "--json"]);
    assert_eq!(rotated["client_id"], id);
    assert_eq!(rotated["tokens_revoked"], 0);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert!(new_secret.starts_with("stw_cs_") && new_secret != old_secret);
    assert_eq!(token(&url, id, old_secret).await.0, 401, "the old secret is refused");
    let (status, Some(new_token)) = token(&url, id, new_secret).await else { panic!("the new secret works") };
    assert_eq!(status, 200);
    assert_eq!(leads_status(&url, &old_token).await, 200, "issued tokens run until they expire");

    // A leaked secret: --revoke-tokens ends every token the client holds.
    let rotated =
        env.json(&["client", "rotate-secret", "--tenant", tenant_id, "--client", id, "--revoke-tokens", "--json"]);
    assert_eq!(rotated["tokens_revoked"], 2);
    assert_eq!(leads_status(&url, &old_token).await, 401);
    assert_eq!(leads_status(&url, &new_token).await, 401);
    assert_eq!(token(&url, id, new_secret).await.0, 401);
    let newest = rotated["client_secret"].as_str().unwrap();
    let (_, Some(last_token)) = token(&url, id, newest).await else { panic!("the newest secret works") };

    // The list shows the client without any secret; revoke deletes it with its token.
    let listed = env.json(&["client", "list", "--tenant", tenant_id, "--json"]);
    assert_eq!(listed["clients"][0]["client_id"], id);
    assert_eq!(listed["clients"][0]["scopes"], serde_json::json!(["leads:read"]));
    assert!(!listed.to_string().contains("stw_cs_"), "no secret in the list: {listed}");
    let revoked = env.json(&["client", "revoke", "--tenant", tenant_id, "--client", id, "--json"]);
    assert_eq!(revoked["tokens_revoked"], 1);
    assert_eq!(leads_status(&url, &last_token).await, 401);
    assert_eq!(token(&url, id, newest).await.0, 401);
    assert_eq!(env.json(&["client", "list", "--tenant", tenant_id, "--json"])["clients"], serde_json::json!([]));

    // Another tenant's id or an unknown client is an error, not a silent success.
    let other = env.json(&["tenant", "create", "Other", "--json"]);
    let stranger = env.json(&["client", "create", "--tenant", other["id"].as_str().unwrap(), "--json"]);
    let stranger_id = stranger["client_id"].as_str().unwrap();
    for command in ["rotate-secret", "revoke"] {
        let output = env.run(&["client", command, "--tenant", tenant_id, "--client", stranger_id, "--json"]);
        assert!(!output.status.success() && output.stdout.is_empty(), "{command}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("no client with id"), "{command}");
    }
    let (status, _) = token(&url, stranger_id, stranger["client_secret"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the other tenant's client is untouched");

    // Every change is an operator entry in the audit log, and the chain holds.
    let auditor = env.json(&["client", "create", "--tenant", tenant_id, "--scopes", "audit:read", "--json"]);
    let auditor_id = auditor["client_id"].as_str().unwrap();
    let (_, Some(audit_token)) = token(&url, auditor_id, auditor["client_secret"].as_str().unwrap()).await else {
        panic!("the auditor gets a token")
    };
    let log: Value = reqwest::Client::new()
        .get(format!("{url}/api/v1/audit-log?actor_kind=operator"))
        .bearer_auth(&audit_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["action"].as_str().unwrap(), entry["target"]["ids"][0].as_str().unwrap()))
        .collect();
    let expected = [
        ("client.created", id),
        ("client.secret_rotated", id),
        ("client.secret_rotated", id),
        ("client.revoked", id),
        ("client.created", auditor_id),
    ];
    assert_eq!(actions, expected, "{log}");
    assert!(!log.to_string().contains("stw_cs_"), "no secret in the audit log");
    let verdict = env.json(&["audit", "verify", "--tenant", tenant_id, "--json"]);
    assert_eq!(verdict["valid"], true);
}

impl Env {
    /// Runs with `input` on standard input.
    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run steward");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

#[tokio::test]
async fn user_create_reads_the_password_from_stdin_and_refuses_weak_ones() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let args = ["user", "create", "--tenant", tenant_id, "--email", "Aino@Acme.FI", "--role", "admin"];

    let with_json = [&args[..], &["--password-stdin", "--json"]].concat();
    let output = env.run_with_stdin(&with_json, "correct horse battery staple\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let user: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(user["email"], "Aino@acme.fi");
    assert_eq!(user["role"], "admin");
    assert_eq!(user["id"].as_str().unwrap().len(), 36);
    assert_eq!(user.as_object().unwrap().len(), 3, "{user}");

    let again = env.run_with_stdin(&with_json, "correct horse battery staple\n");
    assert!(!again.status.success() && again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has a user"));

    let weak = [&args[..], &["--email", "b@acme.fi", "--password-stdin"]].concat();
    let weak = [&weak[..4], &weak[6..]].concat();
    let output = env.run_with_stdin(&weak, "hunter2\n");
    assert!(!output.status.success() && output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 12 characters"));

    let no_stdin = env.run(&args);
    assert!(!no_stdin.status.success());
    assert!(String::from_utf8_lossy(&no_stdin.stderr).contains("--password-stdin"));

    let bad_role = [&args[..6], &["--role", "root", "--password-stdin"]].concat();
    let output = env.run_with_stdin(&bad_role, "correct horse battery staple");
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown role"));

    let verdict = env.json(&["audit", "verify", "--tenant", tenant_id, "--json"]);
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["entries"], 1, "user.created is audited once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_forwarded_by_the_operator_is_pending_for_the_tenant_who_carries_it_out() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let file = env.dir.path().join("request.json");
    std::fs::write(
        &file,
        r#"{"kind": "access", "subject": {"email": "anna@example.com"}, "received_at": "2026-11-02T08:00:00Z", "note": "letter of 2 Nov"}"#,
    )
    .unwrap();
    let forwarded = env.json(&["dsr", "forward", "--tenant", tenant_id, "--file", file.to_str().unwrap(), "--json"]);
    assert_eq!(forwarded["status"], "pending");
    assert_eq!(forwarded["origin"], "processor");
    assert_eq!(forwarded["due_at"], "2026-12-02T08:00:00Z");

    std::fs::write(&file, r#"{"kind": "access", "subject": {"email": "anna@example.com"}, "execute": true}"#).unwrap();
    let refused = env.run(&["dsr", "forward", "--tenant", tenant_id, "--file", file.to_str().unwrap(), "--json"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("never carried out by the operator"));
    assert!(refused.stdout.is_empty());

    let client = env.json(&["client", "create", "--tenant", tenant_id, "--json"]);
    let url = serve(&env).await;
    let (_, token) =
        token(&url, client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap()).await;
    let http = reqwest::Client::new();
    let token = token.unwrap();
    let pending: Value = http
        .get(format!("{url}/api/v1/data-subject-requests?status=pending"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["data"].as_array().unwrap().len(), 1);
    assert_eq!(pending["data"][0]["id"], forwarded["id"]);
    assert_eq!(pending["data"][0]["history"][0]["action"], "forwarded");
    let id = forwarded["id"].as_str().unwrap();
    let done = http
        .post(format!("{url}/api/v1/data-subject-requests/{id}/execute"))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["history"][1]["actor_kind"], "client", "the tenant answered it, not the operator");
    let audit: Value = http
        .get(format!("{url}/api/v1/audit-log?action=subject_request.forwarded"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"][0]["actor"]["kind"], "operator");
}

#[tokio::test]
async fn retention_sweep_deletes_what_expired_in_every_tenant_prints_one_json_object_and_exits_1_on_failure() {
    use steward_store::StoreExt;
    let env = Env::new().await;
    let acme = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let globex = env.json(&["tenant", "create", "Globex", "--json"]);
    let acme_id = acme["id"].as_str().unwrap();

    // Visits of 500 to 600 days ago: past the default 395 days for journeys and profiles.
    let settings = steward_server::Settings {
        data_dir: env.dir.path().to_path_buf(),
        database_url: env.database.clone().unwrap_or_default(),
        ..Default::default()
    };
    let store = steward_server::open_store(&settings).await.unwrap();
    let ctx = steward_server::admin::tenant_ctx(store.as_ref(), acme_id).await.unwrap();
    let now = steward_domain::Timestamp::now();
    let ago = |days: i64| now.checked_sub(time_days(days)).unwrap();
    let config =
        steward_demo::DemoConfig { seed: 5, organizations: 1, visitors: 4, leads: 0, start: ago(600), end: ago(500) };
    let data = steward_demo::generate(&config);
    store.insert(&ctx, &data.organizations).await.unwrap();
    store.insert(&ctx, &data.visitors).await.unwrap();
    store.insert(&ctx, &data.sessions).await.unwrap();
    store.insert(&ctx, &data.events).await.unwrap();

    let summary = env.json(&["retention", "sweep", "--json"]);
    let tenants = summary["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2, "{summary}");
    let of = |id: &Value| tenants.iter().find(|t| t["tenant_id"] == *id).unwrap().clone();
    let swept = of(&acme["id"]);
    assert_eq!(swept["deleted"]["events"], data.events.len(), "{summary}");
    assert_eq!(swept["deleted"]["sessions"], data.sessions.len());
    assert_eq!(swept["deleted"]["visitor-profiles"], data.visitors.len());
    assert_eq!(swept["deleted"]["leads"], 0);
    assert_eq!(swept["held"], false);
    assert_eq!(swept["error"], Value::Null);
    let untouched = of(&globex["id"]);
    assert!(untouched["deleted"].as_object().unwrap().values().all(|n| n == 0), "{summary}");
    assert_eq!(summary["deleted"], data.events.len() + data.sessions.len() + data.visitors.len());
    assert_eq!(store.count_docs(&ctx, steward_store::DocKind::Organization).await.unwrap(), 1, "kept until deleted");

    let again = env.json(&["retention", "sweep", "--tenant", acme_id, "--json"]);
    assert_eq!(again["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(again["deleted"], 0);

    // A server started afterwards, in another process, shows what the command's sweeps did: they
    // are kept in the database, not in the memory of the process that ran them.
    let client = env.json(&["client", "create", "--tenant", acme_id, "--scopes", "data-subjects", "--json"]);
    let url = serve(&env).await;
    let api_token = fresh_token(&url, &client).await;
    let policies = get_json(&format!("{url}/api/v1/retention-policies"), Some(&api_token)).await;
    let last = &policies["last_sweep"];
    assert_eq!(last["tenant_id"], acme["id"], "{policies}");
    assert_eq!(last["total"], 0, "the command's latest sweep of Acme deleted nothing: {policies}");
    assert_eq!(last["failures"], serde_json::json!([]));
    let ready = get_json(&format!("{url}/readyz"), None).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["retention"]["status"], "ok", "{ready}");
    assert_eq!(ready["retention"]["last_run_at"], last["finished_at"], "{ready}");

    // A sweep that fails exits 1, still printing what it did.
    store.insert(&ctx, &data.events).await.unwrap();
    match &env.database {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let function = "CREATE FUNCTION no_delete() RETURNS trigger LANGUAGE plpgsql AS $$ \
                BEGIN RAISE EXCEPTION 'injected failure'; END $$";
            sqlx::query(function).execute(&pool).await.unwrap();
            let trigger = "CREATE TRIGGER no_delete BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION no_delete()";
            sqlx::query(trigger).execute(&pool).await.unwrap();
        }
        None => {
            let url = format!("sqlite://{}", env.dir.path().join("steward.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let trigger =
                "CREATE TRIGGER no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'injected failure'); END";
            sqlx::query(trigger).execute(&pool).await.unwrap();
        }
    }
    let output = env.run(&["retention", "sweep", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let failed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let failed = failed["tenants"].as_array().unwrap().iter().find(|t| t["tenant_id"] == acme["id"]).unwrap().clone();
    assert!(failed["error"].as_str().unwrap().contains("injected failure"), "{failed}");
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: "));

    // The server, still running, did not sweep; it reports the command's failure all the same.
    let ready = get_json(&format!("{url}/readyz"), None).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    let failures = ready["retention"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{ready}");
    assert_eq!(failures[0]["tenant_id"], acme["id"]);
    assert_eq!(failures[0]["dataset"], "events");
    assert!(failures[0]["error"].as_str().unwrap().contains("injected failure"), "{ready}");
    let policies = get_json(&format!("{url}/api/v1/retention-policies"), Some(&api_token)).await;
    assert_eq!(policies["last_sweep"]["failures"][0]["dataset"], "events", "{policies}");

    // A good sweep by the command clears it there too.
    match &env.database {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query("DROP TRIGGER no_delete ON events").execute(&pool).await.unwrap();
        }
        None => {
            let url = format!("sqlite://{}", env.dir.path().join("steward.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query("DROP TRIGGER no_delete").execute(&pool).await.unwrap();
        }
    }
    let swept = env.json(&["retention", "sweep", "--tenant", acme_id, "--json"]);
    assert_eq!(swept["deleted"], data.events.len(), "{swept}");
    let ready = get_json(&format!("{url}/readyz"), None).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["retention"]["failures"], serde_json::json!([]), "{ready}");
}

async fn get_json(url: &str, token: Option<&str>) -> Value {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

fn time_days(days: i64) -> time::Duration {
    time::Duration::days(days)
}

async fn fresh_token(url: &str, client: &Value) -> String {
    let (_, token) = token(url, client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap()).await;
    token.unwrap()
}

#[tokio::test]
async fn a_restore_from_a_backup_taken_before_an_erasure_erases_the_person_again() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let client = env.json(&["client", "create", "--tenant", &tenant_id, "--json"]);
    let url = serve(&env).await;
    let token = fresh_token(&url, &client).await;
    let http = reqwest::Client::new();
    for email in ["anna@example.com", "bob@example.com"] {
        let created = http
            .post(format!("{url}/api/v1/leads"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"email": email, "first_name": "Test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let postgres = env.database.is_some();
    let backup = env.dir.path().join("before-erasure.db");
    if postgres {
        let refused = env.run(&["backup", "--out", backup.to_str().unwrap(), "--json"]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"));
    } else {
        let written = env.json(&["backup", "--out", backup.to_str().unwrap(), "--json"]);
        assert!(written["bytes"].as_u64().unwrap() > 0);
        let again = env.run(&["backup", "--out", backup.to_str().unwrap()]);
        assert!(!again.status.success(), "a backup never overwrites a file");
    }
    // The lead as the backup holds it, for the PostgreSQL case (a pg_restore brings it back).
    let anna: Value = http
        .get(format!("{url}/api/v1/leads?limit=10"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let anna_lead: steward_domain::Lead = serde_json::from_value(
        anna["data"].as_array().unwrap().iter().find(|l| l["email"] == "anna@example.com").unwrap().clone(),
    )
    .unwrap();

    let request: Value = http
        .post(format!("{url}/api/v1/data-subject-requests"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"kind": "erasure", "subject": {"email": "anna@example.com"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(request["status"], "completed", "{request}");

    let reapplied = if postgres {
        // What a pg_restore of an older dump does: the person's lead is back.
        let settings = steward_server::Settings {
            data_dir: env.dir.path().to_path_buf(),
            database_url: env.database.clone().unwrap_or_default(),
            ..Default::default()
        };
        let store = steward_server::open_store(&settings).await.unwrap();
        let ctx = steward_store::TenantCtx::new(tenant_id.parse().unwrap());
        steward_store::StoreExt::insert(store.as_ref(), &ctx, std::slice::from_ref(&anna_lead)).await.unwrap();
        env.json(&["erasure", "reapply", "--json"])["tenants"].clone()
    } else {
        env.json(&["restore", backup.to_str().unwrap(), "--json"])["reapplied"].clone()
    };
    let ours = reapplied.as_array().unwrap().iter().find(|t| t["tenant_id"] == tenant_id.as_str()).unwrap();
    assert_eq!(ours["erased"]["leads"], 1, "{reapplied}");

    // A server on the restored database: the person is gone again, and stays refused. (The
    // token was issued after the backup; the client was there before it.)
    let url = serve(&env).await;
    let token = fresh_token(&url, &client).await;
    let leads: Value =
        http.get(format!("{url}/api/v1/leads")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let emails: Vec<&str> = leads["data"].as_array().unwrap().iter().map(|l| l["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["bob@example.com"]);
    let again = http
        .post(format!("{url}/api/v1/leads"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"email": "anna@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "the ledger came back with the erasure");
    let audit: Value = http
        .get(format!("{url}/api/v1/audit-log?action=erasure.reapplied"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn import_loads_a_csv_through_a_mapping_reports_bad_rows_by_line_and_exits_by_outcome() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let dir = env.dir.path();
    let mapping = dir.join("mapping.json");
    std::fs::write(
        &mapping,
        r#"{"date_format": "%d.%m.%Y %H:%M", "columns": {"Name": "full_name", "E-mail": "email",
            "Signed up": "first_touch.occurred_at", "Source": "first_touch.utm.source", "Stage": "custom_fields.stage"}}"#,
    )
    .unwrap();
    // Line 3 is a bad email, 4-5 a row with a note over two lines, 6 a bad date.
    let csv = dir.join("contacts.csv");
    std::fs::write(
        &csv,
        "Name,E-mail,Signed up,Source,Stage,Note\n\
         Anna Virtanen,anna@acme.fi,31.01.2026 14:05,google,lead,\n\
         Bob Builder,bob@,01.02.2026 09:00,,lead,\n\
         Cecilia Berg,cecilia@example.org,01.02.2026 10:00,,customer,\"two\nlines\"\n\
         Dan Doe,dan@example.org,32.01.2026 10:00,,lead,\n",
    )
    .unwrap();
    let (file, mapping) = (csv.to_str().unwrap(), mapping.to_str().unwrap());
    let args = ["import", file, "--tenant", tenant_id, "--dataset", "leads", "--mapping", mapping, "--json"];
    let output = env.run(&args);
    assert_eq!(output.status.code(), Some(1), "some rows were rejected: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "--json prints exactly one line: {stdout}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((summary["rows"].as_u64(), summary["created"].as_u64()), (Some(4), Some(2)), "{summary}");
    let lines: Vec<(u64, &str)> = summary["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(lines, vec![(3, "email"), (6, "first_touch.occurred_at")]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 of 4 rows were rejected"));

    let clean = dir.join("clean.csv");
    std::fs::write(&clean, "Name,E-mail,Signed up,Source,Stage\nErik Ek,erik@example.org,,,\n").unwrap();
    let output = env.run(&[
        "import",
        clean.to_str().unwrap(),
        "--tenant",
        tenant_id,
        "--dataset",
        "leads",
        "--mapping",
        mapping,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 created, 0 rejected"));

    let client = env.json(&["client", "create", "--tenant", tenant_id, "--json"]);
    let url = serve(&env).await;
    let (_, token) =
        token(&url, client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap()).await;
    let http = reqwest::Client::new();
    let get = |path: String| http.get(format!("{url}{path}")).bearer_auth(token.as_deref().unwrap()).send();
    let page: Value = get("/api/v1/leads?email=anna@acme.fi".into()).await.unwrap().json().await.unwrap();
    let anna = &page["data"][0];
    assert_eq!((anna["first_name"].as_str(), anna["last_name"].as_str()), (Some("Anna"), Some("Virtanen")));
    assert_eq!(anna["first_touch"]["occurred_at"], "2026-01-31T14:05:00Z");
    assert_eq!(anna["first_touch"]["utm"]["source"], "google");
    assert_eq!(anna["custom_fields"]["stage"], "lead");
    let page: Value = get("/api/v1/leads?email=cecilia@example.org".into()).await.unwrap().json().await.unwrap();
    assert_eq!(page["data"][0]["custom_fields"], serde_json::json!({"stage": "customer"}), "Note was not mapped");
    let audit: Value = get("/api/v1/audit-log?action=import.completed".into()).await.unwrap().json().await.unwrap();
    assert_eq!(audit["data"][0]["actor"]["kind"], "operator");
    assert_eq!(audit["data"][0]["detail"]["rejected"], 2);
}

#[tokio::test]
async fn import_refuses_a_bad_mapping_and_an_archive_with_exit_2_and_nothing_on_stdout() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let csv = env.dir.path().join("leads.csv");
    std::fs::write(&csv, "email\nanna@example.org\n").unwrap();
    let mapping = env.dir.path().join("mapping.json");
    std::fs::write(&mapping, r#"{"columns": {"email": "e_mail"}}"#).unwrap();
    let archive = env.dir.path().join("steward-archive.zip");
    std::fs::write(&archive, b"PK").unwrap();
    let (csv, mapping, archive) = (csv.to_str().unwrap(), mapping.to_str().unwrap(), archive.to_str().unwrap());
    let cases: [(&[&str], &str); 3] = [
        (&["import", csv, "--tenant", tenant_id, "--dataset", "leads", "--mapping", mapping, "--json"], "e_mail"),
        (&["import", csv, "--tenant", tenant_id, "--dataset", "journeys", "--json"], "--dataset leads"),
        (&["import", archive, "--tenant", tenant_id, "--json"], "is not a ZIP archive"),
    ];
    for (args, says) in cases {
        let output = env.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains(says), "{args:?}: {stderr}");
    }
    let help = env.run(&["import", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("1 when some rows were rejected"));
}

#[tokio::test]
async fn import_rejects_a_multibyte_vat_id_keeps_the_other_rows_and_exits_1_without_a_panic() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let csv = env.dir.path().join("organizations.csv");
    std::fs::write(&csv, "name,vat_id\nFirst Oy,FI01120389\nEuro Oy,€1234\nLast Oy,\n").unwrap();
    let args = ["import", csv.to_str().unwrap(), "--tenant", tenant_id, "--dataset", "organizations", "--json"];
    let output = env.run(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("€1234"), "{stderr}");
    assert!(stderr.contains("1 of 3 rows were rejected"), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((summary["created"].as_u64(), summary["rejected"].as_u64()), (Some(2), Some(1)), "{summary}");
    assert_eq!(summary["rejections"][0]["line"], 3);
    assert_eq!(summary["rejections"][0]["field"], "vat_id");
}

#[tokio::test]
async fn import_exits_2_when_every_row_is_rejected_or_the_file_is_not_csv() {
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let dir = env.dir.path();
    let all_bad = dir.join("all-bad.csv");
    std::fs::write(&all_bad, "email\nbob@\nnot an email\n").unwrap();
    let args = ["import", all_bad.to_str().unwrap(), "--tenant", tenant_id, "--dataset", "leads", "--json"];
    let output = env.run(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing was imported: all 2 rows were rejected"), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((summary["created"].as_u64(), summary["rejected"].as_u64()), (Some(0), Some(2)), "{summary}");

    let mut xlsx = b"PK\x03\x04".to_vec();
    xlsx.extend_from_slice(&[0; 26]);
    xlsx.extend_from_slice(b"[Content_Types].xml");
    xlsx.extend_from_slice(&[7; 300]);
    xlsx.extend_from_slice(b"PK\x03\x04xl/workbook.xml");
    let mut json_lines = String::from("[\n");
    for n in 0..5_000 {
        json_lines.push_str(&format!("  {{\"email\": \"person{n}@example.org\"}},\n"));
    }
    json_lines.push_str("  {}\n]\n");
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("leads.xlsx", xlsx, "(it looks like XLSX"),
        ("leads.json", json_lines.into_bytes(), "(it looks like JSON"),
        ("leads.bin", b"email\n\0\x01\x02\x03".to_vec(), "NUL bytes"),
    ];
    for (name, content, says) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let args = ["import", path.to_str().unwrap(), "--tenant", tenant_id, "--dataset", "leads", "--json"];
        let output = env.run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(output.stdout.is_empty(), "{name} printed a summary");
        assert!(stderr.starts_with("error: this is not a CSV file") && stderr.contains(says), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "refused once, not line by line: {stderr}");
    }
}

#[tokio::test]
async fn import_loads_a_tenant_archive_into_an_empty_tenant_and_refuses_a_second_time() {
    let env = Env::new().await;
    let source = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let client = env.json(&["client", "create", "--tenant", source["id"].as_str().unwrap(), "--json"]);
    let url = serve(&env).await;
    let token = fresh_token(&url, &client).await;
    let http = reqwest::Client::new();
    for email in ["anna@example.com", "bob@example.com"] {
        let created = http
            .post(format!("{url}/api/v1/leads"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"email": email}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let queued = http.post(format!("{url}/api/v1/archives")).bearer_auth(&token).send().await.unwrap();
    let location = queued.headers()["location"].to_str().unwrap().to_string();
    let mut job = Value::Null;
    for _ in 0..600 {
        job = http.get(format!("{url}{location}")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if job["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let file_url = job["file_url"].as_str().expect("the archive was built");
    let zip = http.get(format!("{url}{file_url}")).bearer_auth(&token).send().await.unwrap().bytes().await.unwrap();
    let path = env.dir.path().join("acme.zip");
    std::fs::write(&path, &zip).unwrap();

    let target = env.json(&["tenant", "create", "Acme Oy (moved)", "--json"]);
    let target_id = target["id"].as_str().unwrap();
    let report = env.json(&["import", path.to_str().unwrap(), "--tenant", target_id, "--json"]);
    assert_eq!(report["imported"]["leads"], 2, "{report}");
    assert_eq!(report["source_tenant"], source["id"]);
    let again = env.run(&["import", path.to_str().unwrap(), "--tenant", target_id, "--json"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("new, empty tenant"));
}

/// Noon (UTC) of the day before the `n`th working day (Monday to Friday) counted back from today,
/// today included: a request made then is on its working day `n` today.
fn working_days_ago(n: u32) -> steward_domain::Timestamp {
    let is_working = |date: time::Date| !matches!(date.weekday(), time::Weekday::Saturday | time::Weekday::Sunday);
    let mut date = time::OffsetDateTime::now_utc().date();
    let mut counted = 0;
    loop {
        if is_working(date) {
            counted += 1;
        }
        date = date.previous_day().unwrap();
        if counted == n {
            break;
        }
    }
    steward_domain::Timestamp::from_datetime(date.with_time(time::macros::time!(12:00)).assume_utc())
}

#[tokio::test]
async fn infeasibility_is_accepted_on_working_day_14_and_refused_on_day_15_and_past_seven_months() {
    use steward_domain::switching::{SwitchingAction, SwitchingPeriods, SwitchingRequest};
    use steward_store::StoreExt;
    let env = Env::new().await;
    let tenant = env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let settings = steward_server::Settings {
        data_dir: env.dir.path().to_path_buf(),
        database_url: env.database.clone().unwrap_or_default(),
        ..Default::default()
    };
    let store = steward_server::open_store(&settings).await.unwrap();
    let ctx = steward_server::admin::tenant_ctx(store.as_ref(), tenant_id).await.unwrap();
    let request = |received| {
        SwitchingRequest::new(SwitchingAction::OnPremises, None, received, None, SwitchingPeriods::default(), received)
    };
    // On a Saturday or Sunday the 14th working day of a request is already behind, the 13th not.
    let today = time::OffsetDateTime::now_utc().date();
    let weekend = matches!(today.weekday(), time::Weekday::Saturday | time::Weekday::Sunday);
    let late = request(working_days_ago(15));
    let on_time = request(working_days_ago(if weekend { 13 } else { 14 }));
    let early = request(working_days_ago(2));
    store.insert(&ctx, &[late.clone(), on_time.clone(), early.clone()]).await.unwrap();
    let until =
        |r: &SwitchingRequest, days: i64| r.received_at.checked_add(time::Duration::days(days)).unwrap().to_string();
    let declare = |r: &SwitchingRequest, until: String, json: bool| {
        let mut args = vec!["switching".to_string(), "infeasible".into(), "--tenant".into(), tenant_id.to_string()];
        args.extend(["--request".into(), r.id.to_string(), "--until".into(), until]);
        args.extend(["--reason".into(), "the graph store is moved by hand".into()]);
        if json {
            args.push("--json".into());
        }
        env.command().args(&args).output().unwrap()
    };

    let refused = declare(&late, until(&late, 90), true);
    assert_eq!(refused.status.code(), Some(1), "working day 15 is too late");
    let error: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(error["error"]["code"], "too_late", "{error}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.starts_with("error: ") && stderr.contains("14 working days"), "{stderr}");
    let human = declare(&late, until(&late, 90), false);
    assert_eq!(human.status.code(), Some(1));
    assert!(human.stdout.is_empty(), "without --json a refusal prints nothing on stdout");

    let accepted = declare(&on_time, until(&on_time, 90), true);
    assert!(accepted.status.success(), "{}", String::from_utf8_lossy(&accepted.stderr));
    let accepted: Value = serde_json::from_slice(&accepted.stdout).unwrap();
    assert_eq!(accepted["transitional_ends_at"], until(&on_time, 90).as_str());
    assert_eq!(accepted["infeasibility"]["reason"], "the graph store is moved by hand");

    let too_long = declare(&early, until(&early, 250), true);
    assert_eq!(too_long.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&too_long.stdout).unwrap();
    assert_eq!(error["error"]["code"], "alternative_too_long", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("7 months"), "{error}");

    let stored: SwitchingRequest = store.get(&ctx, late.id.into_uuid()).await.unwrap().unwrap();
    assert_eq!(stored.infeasibility, None, "a refused declaration changes nothing");
    let stored: SwitchingRequest = store.get(&ctx, on_time.id.into_uuid()).await.unwrap().unwrap();
    assert_eq!(stored.timeline.last().unwrap().action, "infeasible");
    let query =
        steward_store::AuditQuery { action: Some("switching.infeasible".into()), limit: 100, ..Default::default() };
    let entries = store.audit_entries(&ctx, &query).await.unwrap();
    assert_eq!(entries.len(), 1, "only the accepted declaration is audited");

    // One pass starts the transitional period of all three (their starts are past).
    let report = env.json(&["switching", "advance", "--json"]);
    let steps: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["transitional_started"; 3], "{report}");
    let none = env.run(&["switching", "attestation", "--tenant", tenant_id]);
    assert!(!none.status.success() && none.stdout.is_empty(), "no attestation before erasure");
}

#[tokio::test]
async fn restore_refuses_with_exit_3_while_steward_serve_holds_the_database_and_restores_once_it_stopped() {
    let env = Env::new().await;
    if env.database.is_some() {
        // PostgreSQL is restored with pg_restore (see the test above); this is SQLite's lock.
        return;
    }
    env.json(&["tenant", "create", "Acme Oy", "--json"]);
    let backup = env.dir.path().join("backup.db");
    env.json(&["backup", "--out", backup.to_str().unwrap(), "--json"]);
    let log = env.dir.path().join("serve.log");
    let child = env
        .command()
        .env("NO_COLOR", "1")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut server = Demo(child);
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("serving") {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "steward serve exited: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "steward serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let refused = env.run(&["restore", backup.to_str().unwrap(), "--json"]);
    assert_eq!(refused.status.code(), Some(3), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(refused.stdout.is_empty());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("in use by a running Steward server"), "{message}");
    assert!(message.contains("stop every `steward serve`"), "{message}");
    assert!(message.contains("steward.db.lock"), "{message}");

    drop(server);
    let restored = env.json(&["restore", backup.to_str().unwrap(), "--json"]);
    assert!(restored["database"].as_str().unwrap().ends_with("steward.db"), "{restored}");
    let tenants = env.json(&["tenant", "list", "--json"]);
    assert_eq!(tenants["tenants"].as_array().unwrap().len(), 1);
}
