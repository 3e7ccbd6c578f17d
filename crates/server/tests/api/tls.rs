//! HTTPS served by Steward itself: rustls with the operator's PEM files, HSTS on every answer,
//! and console cookies marked `Secure`.

use steward_server::{AppState, Settings};

use crate::helpers::spawn_app;

#[tokio::test]
async fn with_a_certificate_steward_serves_https_with_hsts() {
    // The store of an ordinary test app, served a second time over TLS.
    let app = spawn_app().await;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut settings = Settings::default();
    settings.tls.cert = cert.display().to_string();
    settings.tls.key = key.display().to_string();
    settings.exports.worker = false;
    let state = AppState::with_clock(
        app.store.clone(),
        settings,
        steward_server::Clock::fixed(steward_domain::Timestamp::now()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { steward_server::serve(listener, state, std::future::pending()).await.unwrap() });

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut answer = None;
    for _ in 0..50 {
        match trusting.get(format!("https://localhost:{port}/healthz")).send().await {
            Ok(response) => {
                answer = Some(response);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    let answer = answer.expect("an HTTPS answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    // The console's cookies travel over TLS only.
    let sign_in = trusting.get(format!("https://localhost:{port}/console/sign-in")).send().await.unwrap();
    let cookies: Vec<String> =
        sign_in.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(!cookies.is_empty() && cookies.iter().all(|c| c.contains("Secure")), "{cookies:?}");

    // Plain HTTP on the same port gets no answer, and a client that does not trust the
    // certificate refuses the connection.
    assert!(reqwest::get(format!("http://localhost:{port}/healthz")).await.is_err());
    assert!(reqwest::get(format!("https://localhost:{port}/healthz")).await.is_err());
}

#[test]
fn a_certificate_without_its_key_is_refused_at_start() {
    let figment_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(figment_file.path(), "[tls]\ncert = \"/etc/steward/cert.pem\"\n").unwrap();
    let error = Settings::load(Some(figment_file.path())).unwrap_err().to_string();
    assert!(error.contains("set both cert and key"), "{error}");
}
