//! A real browser on a real (test) website: headless Chromium visits three pages that include
//! `/tracker.js` and submits a form; Steward, behind a proxy that says the visitor came from
//! 203.0.113.77, must store one session of four ordered events and a lead linked to the
//! visitor, and keep that address nowhere: not in the database files, not in its log.
//!
//! Chromium, chromedriver and Selenium are prepared by `scripts/test` (Debian's packages and the
//! test virtualenv); the browser is driven by `scripts/browser_journey.py`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_steward");
/// The visitor's address as the proxy reports it (TEST-NET-3, RFC 5737).
const VISITOR_IP: &str = "203.0.113.77";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn steward(data: &Path, args: &[&str]) -> Value {
    let output =
        Command::new(BIN).env_remove("STEWARD_DATABASE_URL").arg("--data-dir").arg(data).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Forwards everything to Steward as a load balancer would, adding the visitor's address.
async fn forward(State(upstream): State<String>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut outgoing = reqwest::Client::new().request(parts.method.clone(), format!("{upstream}{path}")).body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = match outgoing.header("x-forwarded-for", VISITOR_IP).send().await {
        Ok(response) => response,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let mut answer = Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    answer.body(Body::from(response.bytes().await.unwrap_or_default())).unwrap()
}

/// The test site's pages, with the tracker's address filled in.
async fn page(State(tracker): State<String>, request: Request) -> Response {
    let name = request.uri().path().trim_start_matches('/');
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/site").join(name);
    match std::fs::read_to_string(&file) {
        Ok(html) if name.ends_with(".html") => {
            ([("content-type", "text/html; charset=utf-8")], html.replace("{{TRACKER}}", &tracker)).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn listen(router: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

fn wait_for_address(log: &Path, server: &mut Child) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(address) = text.split("address=").nth(1).and_then(|rest| rest.split_whitespace().next()) {
            return address.to_string();
        }
        assert!(server.try_wait().unwrap().is_none(), "steward serve exited: {text}");
        assert!(started.elapsed() < Duration::from_secs(60), "steward serve did not start: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn get(url: &str, token: &str) -> Value {
    reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(files_under(&path)) } else { files.push(path) }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_journey_becomes_one_session_and_a_linked_lead_without_the_full_address() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tenant = steward(&data, &["tenant", "create", "Shop Oy", "--json"]);
    let tenant_id = tenant["id"].as_str().unwrap();
    let site = steward(&data, &["site", "add", "--tenant", tenant_id, "--domain", "shop.test", "--json"]);
    let client = steward(&data, &["client", "create", "--tenant", tenant_id, "--json"]);
    let config = dir.path().join("steward.toml");
    std::fs::write(&config, "[collect]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").unwrap();
    let log = dir.path().join("steward.log");
    let child = Command::new(BIN)
        .env_remove("STEWARD_DATABASE_URL")
        .env("STEWARD_LOG", "debug")
        .env("NO_COLOR", "1")
        .args(["--data-dir", data.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::from(std::fs::File::create(dir.path().join("steward.out")).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let address = wait_for_address(&log, &mut server.0);
    let upstream = format!("http://{address}");

    let proxy = listen(axum::Router::new().fallback(forward).with_state(upstream.clone())).await;
    let tracker = format!("http://127.0.0.1:{proxy}/tracker.js?site_key={}", site["site_key"].as_str().unwrap());
    let shop = listen(axum::Router::new().fallback(page).with_state(tracker)).await;

    let python = std::env::var("STEWARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/browser_journey.py");
    let start = format!("http://shop.test:{shop}/page1.html");
    let journey = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).args(["--start", &start, "--host-rules", "MAP shop.test 127.0.0.1"]).output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        journey.status.success(),
        "the browser journey failed (scripts/test installs chromium, chromium-driver and selenium): {}",
        String::from_utf8_lossy(&journey.stderr)
    );
    let visit: Value = serde_json::from_slice(&journey.stdout).unwrap();
    let visitor = visit["visitor_id"].as_str().expect("the tracker kept a visitor id");

    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{upstream}/oauth/token"))
        .basic_auth(client["client_id"].as_str().unwrap(), client["client_secret"].as_str())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    // Beacons leave as the pages do; give the last one a moment to land.
    let started = Instant::now();
    let sessions = loop {
        let body = get(&format!("{upstream}/api/v1/journey-insights?profile_ids={visitor}"), token).await;
        let sessions = body["data"][0]["sessions"].clone();
        let events: usize =
            sessions.as_array().map_or(0, |s| s.iter().map(|s| s["events"].as_array().map_or(0, Vec::len)).sum());
        if events >= 4 || started.elapsed() > Duration::from_secs(15) {
            break sessions;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(sessions.as_array().unwrap().len(), 1, "one visit: {sessions:#}");
    let session = &sessions[0];
    let events = session["events"].as_array().unwrap();
    let seen: Vec<(u64, &str, &str)> = events
        .iter()
        .map(|e| (e["position"].as_u64().unwrap(), e["type"].as_str().unwrap(), e["page_title"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "page_view", "Page one"),
            (2, "page_view", "Page two"),
            (3, "page_view", "Page three"),
            (4, "form_submit", "Page three")
        ],
        "{session:#}"
    );
    assert_eq!(session["ip_network"], "203.0.113.0/24");
    assert_eq!(session["device"]["browser"], "HeadlessChrome");
    assert_eq!(events[1]["referrer_url"], format!("http://shop.test:{shop}/page1.html"));

    let profile = get(&format!("{upstream}/api/v1/visitor-profiles/{visitor}"), token).await;
    assert_eq!(profile["identified"], true);
    assert_eq!(profile["ip_network"], "203.0.113.0/24");
    let lead_id = profile["lead_ids"][0].as_str().expect("the form's lead is on the profile");
    let lead = get(&format!("{upstream}/api/v1/leads/{lead_id}"), token).await;
    assert_eq!(lead["visitor_profile_id"], visitor);
    assert_eq!(lead["email"], "ada@example.com");
    assert_eq!(lead["first_name"], "Ada");
    assert_eq!(lead["consent"]["marketing"], true);
    assert_eq!(lead["ip_network"], "203.0.113.0/24");
    assert_eq!(lead["conversion_url"], format!("http://shop.test:{shop}/page3.html"));

    drop(server);
    let mut checked = 0;
    for file in files_under(&data).into_iter().chain([log.clone(), dir.path().join("steward.out")]) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(VISITOR_IP), "{} holds the visitor's full address", file.display());
        checked += 1;
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("/collect"), "the log shows the collection requests, so the check above means something");
    assert!(checked >= 3, "the database file, its log and the server logs were read");
}
