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
