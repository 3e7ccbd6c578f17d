//! Connections under `server.*`: a client that never finishes its request head is cut off, an
//! idle keep-alive connection is closed, and past `max_connections` a new one is refused.

use std::time::{Duration, Instant};

use steward_server::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_with};

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: steward.test\r\n\r\n";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap()
}

/// Sends a request on a kept-alive connection and reads its whole answer (by Content-Length).
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "the server closed the connection instead of answering");
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse().ok())
                .unwrap();
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// Waits for the server to close `stream` (end of file or reset) and says after how long;
/// `None` when it sent bytes instead or kept it open past `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut chunk = [0u8; 1024];
    match tokio::time::timeout(within, stream.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Some(started.elapsed()),
        _ => None,
    }
}

fn settings(header_seconds: u32, idle_seconds: u32, max_connections: u32) -> Settings {
    let mut settings = Settings::default();
    settings.server.header_read_timeout_seconds = header_seconds;
    settings.server.idle_timeout_seconds = idle_seconds;
    settings.server.max_connections = max_connections;
    settings
}

#[tokio::test]
async fn a_connection_that_sends_half_a_request_head_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(settings(1, 60, 100)).await;
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: steward.test\r\nx-trickle: ").await.unwrap();
    let after = closed_within(&mut slow, Duration::from_secs(5)).await.expect("closed within 5 s");
    assert!(after >= Duration::from_millis(800), "closed too early: {after:?}");

    // Bytes trickled one by one do not buy more time: the clock runs from the first one.
    let mut trickling = connect(&app).await;
    let started = Instant::now();
    for byte in b"GET /healthz HTTP/1.1\r\nhost: steward.test\r\n".iter().take(6) {
        let _ = trickling.write_all(&[*byte]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(closed_within(&mut trickling, Duration::from_secs(5)).await.is_some());
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

    // A client that sends its request in time is served.
    let mut prompt = connect(&app).await;
    assert!(exchange(&mut prompt, HEALTH).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lives_past_the_header_timeout_until_the_idle_timeout() {
    let app = spawn_app_with(settings(1, 3, 100)).await;
    let mut stream = connect(&app).await;
    assert!(exchange(&mut stream, HEALTH).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(exchange(&mut stream, HEALTH).await.starts_with("HTTP/1.1 200"), "idle is not a slow header");
    let after = closed_within(&mut stream, Duration::from_secs(8)).await.expect("closed when idle");
    assert!(after >= Duration::from_millis(2_500), "closed before the idle timeout: {after:?}");
}

#[tokio::test]
async fn past_max_connections_a_new_connection_is_closed_until_one_ends() {
    let app = spawn_app_with(settings(30, 60, 2)).await;
    let mut first = connect(&app).await;
    let mut second = connect(&app).await;
    assert!(exchange(&mut first, HEALTH).await.starts_with("HTTP/1.1 200"));
    assert!(exchange(&mut second, HEALTH).await.starts_with("HTTP/1.1 200"));

    let mut third = connect(&app).await;
    let _ = third.write_all(HEALTH).await;
    assert!(closed_within(&mut third, Duration::from_secs(5)).await.is_some(), "the third connection was served");
    // The two held connections are still served.
    assert!(exchange(&mut second, HEALTH).await.starts_with("HTTP/1.1 200"));

    drop(first);
    let started = Instant::now();
    loop {
        let mut next = connect(&app).await;
        let _ = next.write_all(HEALTH).await;
        let mut answer = [0u8; 12];
        if tokio::time::timeout(Duration::from_secs(2), next.read_exact(&mut answer)).await.is_ok_and(|r| r.is_ok()) {
            assert_eq!(&answer, b"HTTP/1.1 200");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no room after a connection ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
