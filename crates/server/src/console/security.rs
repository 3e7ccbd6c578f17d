//! The console's credentials: argon2id passwords (hashed off the async runtime), RFC 6238 TOTP,
//! one-time recovery codes, the lockout schedule, session tokens, CSRF tokens and cookies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use sha2::{Digest, Sha256};
use steward_domain::Password;
use steward_store::LockSchedule;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use totp_rs::{Builder, Secret, Totp};

/// Failed sign-ins a user gets before the account locks.
pub const FREE_FAILURES: u32 = 5;
/// The first lock; each further failure doubles it up to [`MAX_LOCK_SECONDS`].
pub const FIRST_LOCK_SECONDS: i64 = 60;
pub const MAX_LOCK_SECONDS: i64 = 3_600;
/// TOTP: 30-second steps, one step of clock skew either way, six digits (RFC 6238 defaults,
/// what every authenticator app expects).
pub const TOTP_STEP_SECONDS: u64 = 30;
pub const TOTP_SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const RECOVERY_LEN: usize = 16;

/// The lockout schedule, applied by the store when an attempt is reserved (before its password
/// is checked): the fifth attempt since the last success locks for a minute, each further one
/// (one is allowed when a lock runs out) twice as long, up to an hour.
pub const LOCK_SCHEDULE: LockSchedule =
    LockSchedule { free: FREE_FAILURES, first_seconds: FIRST_LOCK_SECONDS, max_seconds: MAX_LOCK_SECONDS };

/// How long a user is locked out after `failures` attempts in a row without success, if at all.
pub fn lock_seconds(failures: u32) -> Option<i64> {
    LOCK_SCHEDULE.lock_seconds(failures)
}

/// An argon2id PHC string of the password (OWASP's parameters: 19 MiB, 2 passes), computed on
/// a blocking thread: a hash takes tens of milliseconds of CPU that must not stall the runtime.
pub async fn hash_password(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// A hash of a random password that nobody knows, verified instead of a real one when the
/// email is unknown, so that an unknown address costs as much time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random: [u8; 32] = rand::rng().random();
        Argon2::default().hash_password(&random).map(|hash| hash.to_string()).unwrap_or_default()
    })
}

/// Whether `password` matches `hash`; with no hash (an unknown user) the dummy is verified and
/// the answer is false. Runs on a blocking thread, unbounded: sign-ins go through
/// [`PasswordChecks::verify`] instead.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_blocking(&password, hash.as_deref())).await.unwrap_or(false)
}

fn verify_blocking(password: &str, hash: Option<&str>) -> bool {
    let candidate = match hash {
        Some(hash) => hash,
        None => dummy_hash(),
    };
    let matches = Argon2::default().verify_password(password.as_bytes(), candidate).is_ok();
    matches && hash.is_some()
}

/// The node's budget of password checks: each holds about 19 MiB for tens of milliseconds, so
/// without a bound 40 sign-ins at once took 850 MB. A check waits for a turn up to the
/// configured time and is then refused ([`Busy`]); its turn is held until the hash is done,
/// even when the request that asked for it is gone.
#[derive(Debug)]
pub struct PasswordChecks {
    turns: Arc<Semaphore>,
    wait: Duration,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

/// No turn came within the wait: answer 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Seconds a refused sign-in is told to wait.
pub const BUSY_RETRY_SECONDS: u64 = 2;

impl PasswordChecks {
    pub fn new(at_once: usize, wait: Duration) -> Self {
        Self { turns: Arc::new(Semaphore::new(at_once.max(1))), wait, running: Arc::default(), most: Arc::default() }
    }

    /// A turn: waits up to the configured time.
    pub async fn turn(&self) -> Result<OwnedSemaphorePermit, Busy> {
        match tokio::time::timeout(self.wait, self.turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }

    /// [`verify_password`] within the bound. Unknown users (no hash) cost the same check.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, Busy> {
        let permit = self.turn().await?;
        let (running, most) = (self.running.clone(), self.most.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let matches = verify_blocking(&password, hash.as_deref());
            running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            matches
        })
        .await;
        Ok(checked.unwrap_or(false))
    }

    /// Checks running now (a gauge for metrics).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most checks that have run at once since start.
    pub fn most_at_once(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

pub fn new_totp_secret() -> Vec<u8> {
    let secret: [u8; TOTP_SECRET_BYTES] = rand::rng().random();
    secret.to_vec()
}

/// The TOTP generator for a secret; `account` names the user in the authenticator app.
pub fn totp(secret: &[u8], account: &str) -> anyhow::Result<Totp> {
    // A colon separates issuer and account in the URI; an address with one is named by a
    // stand-in rather than refused.
    let account = if account.contains(':') { "console user" } else { account };
    Builder::new()
        .with_secret(Secret::new(secret.to_vec().into_boxed_slice()))
        .with_step_duration(TOTP_STEP_SECONDS)
        .with_skew(1)
        .with_digits(6)
        .with_issuer(Some("Steward"))
        .with_account_name(account)
        .build()
        .map_err(|e| anyhow::anyhow!("TOTP parameters: {e}"))
}

/// The time step whose code `code` is, within one step of `unix_seconds` either way. Whether
/// that step was used before is the store's question ([`steward_store::UserStore::use_totp_step`]).
pub fn totp_step(totp: &Totp, code: &str, unix_seconds: u64) -> Option<i64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp.check(code, unix_seconds).and_then(|step| i64::try_from(step).ok())
}

/// Whether the text is shaped like a TOTP code (six digits) rather than a recovery code.
pub fn looks_like_totp(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Ten new recovery codes as shown to the user (`abcd-efgh-ijkl-mnop`, 80 random bits each).
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let chars: Vec<char> = (0..RECOVERY_LEN)
                .map(|_| char::from(RECOVERY_ALPHABET[usize::from(rng.random::<u8>() & 31)]))
                .collect();
            chars.chunks(4).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join("-")
        })
        .collect()
}

/// A recovery code as typed, normalised for hashing: case, dashes and spaces do not matter.
/// `None` when it cannot be one.
pub fn normalise_recovery_code(text: &str) -> Option<String> {
    let code: String = text.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_lowercase()).collect();
    (code.len() == RECOVERY_LEN && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(code)
}

/// A random token for a cookie (session or CSRF seed).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The CSRF token of forms rendered for the holder of `secret` (the session token, or before
/// sign-in the CSRF seed cookie): derived, so it needs no storage, and unguessable without
/// the HttpOnly cookie.
pub fn csrf_token(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"steward-console-csrf-v1\0");
    hasher.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

pub fn csrf_matches(secret: Option<&str>, presented: Option<&str>) -> bool {
    match (secret, presented) {
        (Some(secret), Some(presented)) if !secret.is_empty() => {
            csrf_token(secret).as_bytes().ct_eq(presented.as_bytes()).into()
        }
        _ => false,
    }
}

/// The value of a cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the browser reached us over TLS: directly, or through a proxy that says so in
/// `X-Forwarded-Proto` or `Forwarded` (Steward itself serves plain HTTP behind one).
pub fn over_tls(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(axum::http::header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().split([';', ',']).any(|part| part.trim() == "proto=https"));
    forwarded_proto || forwarded
}

/// A `Set-Cookie` value: never readable by scripts, never sent cross-site, `Secure` under TLS.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_seconds: i64, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age_seconds}{secure}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 secret, at T = 59 s the 8-digit code is 94287082.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_follow_rfc_6238_and_are_accepted_one_step_either_way() {
        let totp = totp(RFC_SECRET, "aino@example.fi").unwrap();
        assert_eq!(totp.generate(59).to_string(), "287082");
        assert_eq!(totp_step(&totp, "287082", 59), Some(1));
        assert_eq!(totp_step(&totp, "287082", 59 + 30), Some(1), "one step late");
        assert_eq!(totp_step(&totp, "287082", 59 - 30), Some(1), "one step early");
        assert_eq!(totp_step(&totp, "287082", 59 + 60), None, "two steps late");
        assert_eq!(totp_step(&totp, "287083", 59), None);
        assert_eq!(totp_step(&totp, "28708", 59), None);
        assert_eq!(totp_step(&totp, " 287082", 59), None);
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_secret() {
        let uri = totp(RFC_SECRET, "aino@example.fi").unwrap().to_url().unwrap();
        assert!(uri.starts_with("otpauth://totp/Steward:aino%40example.fi?"), "{uri}");
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
        assert!(uri.contains("issuer=Steward"), "{uri}");
    }

    #[test]
    fn lockout_starts_after_five_failures_and_doubles_to_an_hour() {
        assert_eq!(lock_seconds(4), None);
        assert_eq!(lock_seconds(5), Some(60));
        assert_eq!(lock_seconds(6), Some(120));
        assert_eq!(lock_seconds(10), Some(1_920));
        assert_eq!(lock_seconds(11), Some(3_600));
        assert_eq!(lock_seconds(u32::MAX), Some(3_600));
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalise_as_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 19);
        let normalised = normalise_recovery_code(code).unwrap();
        assert_eq!(normalise_recovery_code(&code.to_uppercase().replace('-', " ")), Some(normalised));
        assert_eq!(normalise_recovery_code("123456"), None);
        assert_eq!(normalise_recovery_code("abcd-efgh-ijkl-mno1"), None, "1 is not in the alphabet");
    }

    #[test]
    fn csrf_tokens_bind_to_their_secret() {
        let secret = new_token();
        let token = csrf_token(&secret);
        assert!(csrf_matches(Some(&secret), Some(&token)));
        assert!(!csrf_matches(Some(&new_token()), Some(&token)));
        assert!(!csrf_matches(None, Some(&token)));
        assert!(!csrf_matches(Some(&secret), None));
        assert!(!csrf_matches(Some(""), Some(&csrf_token(""))));
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password(Password::parse("correct horse battery").unwrap()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await);
        assert!(!verify_password("correct horse batterY".into(), Some(hash)).await);
        assert!(!verify_password("anything at all".into(), None).await, "unknown users never pass");
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_under_tls() {
        let mut headers = HeaderMap::new();
        assert!(!over_tls(&headers));
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(over_tls(&headers));
        assert_eq!(set_cookie("s", "v", "/", 60, true), "s=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=60; Secure");
        headers.insert(axum::http::header::COOKIE, "a=1; steward_session=abc".parse().unwrap());
        assert_eq!(cookie(&headers, "steward_session"), Some("abc"));
        assert_eq!(cookie(&headers, "b"), None);
    }
}
