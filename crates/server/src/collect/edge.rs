//! The edge of collection: who sent a hit (address, country) and with what (device, language),
//! worked out once per request from the connection and its headers. Nothing personal leaves
//! here whole: the address only masked, the User-Agent only as device type, OS and browser.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use ipnet::IpNet;
use steward_domain::visitor::{Device, DeviceType};
use steward_domain::{CountryCode, IpNetwork, Location, MaskPolicy, text};

use crate::config::CollectSettings;

/// The ua-parser project's `regexes.yaml` (npm `uap-core`, version in `uap-regexes.VERSION`),
/// converted to JSON by `scripts/update-vendored-lists` so that no YAML parser is built.
static UA_REGEXES: &str = include_str!("../../data/uap-regexes.json");

/// Compiling the 1,175 regexes takes about 0.15 s in a release build (0.35 s in a dev one): done
/// once, on the first User-Agent, not at start-up, so tools and tests that never see a hit do
/// not pay for it. `None` only if the vendored file is broken, which a test rules out.
static UA_EXTRACTOR: LazyLock<Option<ua_parser::Extractor<'static>>> = LazyLock::new(|| {
    let started = Instant::now();
    let built = serde_json::from_str::<ua_parser::Regexes<'static>>(UA_REGEXES)
        .map_err(|e| e.to_string())
        .and_then(|regexes| ua_parser::Extractor::try_from(regexes).map_err(|e| e.to_string()));
    match built {
        Ok(extractor) => {
            tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "user-agent parser built");
            Some(extractor)
        }
        Err(error) => {
            tracing::error!(%error, "the vendored user-agent regexes do not build; every device is recorded as other");
            None
        }
    }
});

/// Parsing costs 5–15 µs a User-Agent (release build) while a site's visitors share a few
/// hundred of them, so results are remembered; past this many the memory is dropped and refilled.
const AGENT_CACHE_LIMIT: usize = 10_000;

/// Device, OS and browser tokens sit at the start of a User-Agent; the rest only costs regex time.
const MAX_USER_AGENT_BYTES: usize = 512;

/// Longest language tag kept (RFC 5646 §4.4.1 advises supporting at least 35 characters).
const MAX_LANGUAGE_TAG: usize = 35;

/// Who sent a request: resolved once per request, the full address lives only in this value
/// (never logged, never stored). It has no `Display`, and its `Debug` prints only the network
/// masked to /24 or /48, so a stray `{:?}` cannot leak it either.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress {
    ip: IpAddr,
}

impl ClientAddress {
    /// The full address, for lookups that need it (GeoIP, rate limits); never to be kept.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The only form of the address that may be stored.
    pub fn masked(&self, policy: MaskPolicy) -> IpNetwork {
        IpNetwork::mask_with(self.ip, policy)
    }
}

impl fmt::Debug for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientAddress({})", IpNetwork::mask(self.ip))
    }
}

/// Why [`Edge::new`] could not use the `[collect]` settings.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("collect.trusted_proxies: {0:?} is not an IP address or CIDR network (e.g. \"10.0.0.0/8\")")]
    TrustedProxy(String),
    #[error("collect.country_header: {0:?} is not a valid HTTP header name")]
    CountryHeader(String),
    #[error("collect.geoip_database: cannot read {path}: {error}")]
    GeoIpRead { path: String, error: std::io::Error },
    #[error("collect.geoip_database: {path} is not a MaxMind-format (.mmdb) database: {error}")]
    GeoIpFormat { path: String, error: maxminddb::MaxMindDbError },
}

/// Trusted proxy networks, the optional country header and GeoIP database, from settings; and
/// the memory of parsed User-Agents.
pub struct Edge {
    trusted: Vec<IpNet>,
    country_header: Option<HeaderName>,
    geoip: Option<maxminddb::Reader<Vec<u8>>>,
    agents: AgentCache,
}

impl fmt::Debug for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Edge")
            .field("trusted_proxies", &self.trusted)
            .field("country_header", &self.country_header)
            .field("geoip_database", &self.geoip.as_ref().map(|reader| reader.metadata().database_type.as_str()))
            .finish_non_exhaustive()
    }
}

impl Edge {
    /// Reads the GeoIP database, if one is configured, fully into memory: lookups then never
    /// touch the disk, and a file replaced under a running server cannot be half-read.
    pub fn new(settings: &CollectSettings) -> Result<Self, EdgeError> {
        let trusted = settings
            .trusted_proxies
            .iter()
            .map(|entry| parse_trusted_proxy(entry).ok_or_else(|| EdgeError::TrustedProxy(entry.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let name = settings.country_header.trim();
        let country_header = if name.is_empty() {
            None
        } else {
            Some(HeaderName::from_bytes(name.as_bytes()).map_err(|_| EdgeError::CountryHeader(name.to_string()))?)
        };
        let path = settings.geoip_database.trim();
        let geoip = if path.is_empty() {
            None
        } else {
            let bytes = std::fs::read(path).map_err(|error| EdgeError::GeoIpRead { path: path.to_string(), error })?;
            let reader = maxminddb::Reader::from_source(bytes)
                .map_err(|error| EdgeError::GeoIpFormat { path: path.to_string(), error })?;
            Some(reader)
        };
        Ok(Self { trusted, country_header, geoip, agents: AgentCache::default() })
    }

    /// The client's address: the peer, unless the peer is in a trusted proxy network, then the
    /// right-most address in `Forwarded` (RFC 7239 `for=`, incl. quoted IPv6 with ports) or,
    /// without one, in `X-Forwarded-For`, that is not itself a trusted proxy. Untrusted peers'
    /// forwarding headers are ignored entirely: anyone can send them.
    ///
    /// Hops are read right to left because each proxy appends the address it saw, so only the
    /// entries added by our own proxies can be believed. An entry that is not an address
    /// (`unknown`, `_hidden`, garbage) ends the walk at the last address read, or the peer:
    /// whoever wrote the entries left of it is not known to be ours.
    ///
    /// A proxy that sets only `X-Forwarded-For` passes a client's own `Forwarded` header on,
    /// which would then be read first: such a proxy must remove `Forwarded` from requests.
    pub fn client_address(&self, peer: SocketAddr, headers: &HeaderMap) -> ClientAddress {
        let peer = peer.ip().to_canonical();
        if !self.is_trusted(peer) {
            return ClientAddress { ip: peer };
        }
        let hops = forwarded_hops(headers)
            .filter(|hops| !hops.is_empty())
            .unwrap_or_else(|| hops_in(headers.get_all(X_FORWARDED_FOR).iter(), parse_node));
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = *hop else { break };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        ClientAddress { ip: client }
    }

    /// The visitor's coarse location. A country stated by a trusted proxy in `country_header`
    /// (e.g. CF-IPCountry) wins; unknown codes such as Cloudflare's `XX` and `T1` (Tor) are
    /// ignored. Otherwise the GeoIP database is asked on the full address: country, first
    /// subdivision as region, city, in English. Without either, the location is empty.
    pub fn location(&self, peer: SocketAddr, headers: &HeaderMap, client: &ClientAddress) -> Location {
        let stated = self
            .country_header
            .as_ref()
            .filter(|_| self.is_trusted(peer.ip().to_canonical()))
            .and_then(|name| headers.get(name))
            .and_then(|value| value.to_str().ok())
            .and_then(|code| CountryCode::parse(code).ok());
        let looked_up = self.look_up(client.ip);
        match stated {
            // The database may still know the region and city when it agrees on the country.
            Some(country) if looked_up.country_code != Some(country) => {
                Location { country_code: Some(country), ..Location::default() }
            }
            _ => looked_up,
        }
    }

    /// The device from the User-Agent header, reduced to device type, OS family and browser
    /// family (the raw string is never kept, not even as the cache key). The language is the
    /// tracker's `language` when it is a valid tag, else the first tag of Accept-Language.
    pub fn device(&self, headers: &HeaderMap, language: Option<&str>) -> Device {
        let agent = headers
            .get(header::USER_AGENT)
            .map(|value| self.agents.agent(&String::from_utf8_lossy(value.as_bytes())))
            .unwrap_or_default();
        let language = language.and_then(language_tag).or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .and_then(|first| first.split(';').next())
                .and_then(language_tag)
        });
        Device { kind: agent.kind, os: agent.os, browser: agent.browser, language }
    }

    /// Whether the connecting peer is one of `collect.trusted_proxies`.
    pub fn is_trusted_peer(&self, peer: SocketAddr) -> bool {
        self.is_trusted(peer.ip().to_canonical())
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    fn look_up(&self, ip: IpAddr) -> Location {
        let Some(reader) = &self.geoip else { return Location::default() };
        let city = match reader.lookup(ip).and_then(|found| found.decode::<maxminddb::geoip2::City>()) {
            Ok(Some(city)) => city,
            Ok(None) => return Location::default(),
            // The error names a database offset, never the address.
            Err(error) => {
                tracing::debug!(%error, "GeoIP lookup failed");
                return Location::default();
            }
        };
        let name = |text: Option<&str>| text.and_then(|t| text::line(t.to_string(), 200).ok());
        Location {
            country_code: city.country.iso_code.and_then(|code| CountryCode::parse(code).ok()),
            region: name(city.subdivisions.first().and_then(|subdivision| subdivision.names.english)),
            city: name(city.city.names.english),
        }
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A `trusted_proxies` entry: an address (one host) or a CIDR network. IPv4 entries also match
/// IPv4-mapped IPv6 peers, which dual-stack sockets report.
pub(crate) fn parse_trusted_proxy(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    match entry.parse::<IpAddr>() {
        Ok(ip) => Some(IpNet::from(ip.to_canonical())),
        Err(_) => entry.parse::<IpNet>().ok().map(|net| net.trunc()),
    }
}

/// The `for=` of every element of every `Forwarded` header, in order; `None` when no element has
/// one, so that `X-Forwarded-For` is read instead.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut any = false;
    let hops = hops_in(headers.get_all(header::FORWARDED).iter(), |element| {
        let node = element.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
        });
        any |= node.is_some();
        node.and_then(parse_node)
    });
    any.then_some(hops)
}

/// Comma-separated entries of repeated headers, in order; a header that is not text counts as
/// one entry that is not an address.
fn hops_in<'a>(
    values: impl Iterator<Item = &'a HeaderValue>,
    mut parse: impl FnMut(&str) -> Option<IpAddr>,
) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in values {
        match value.to_str() {
            Ok(text) => hops.extend(text.split(',').map(&mut parse)),
            Err(_) => hops.push(None),
        }
    }
    hops
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711` (ports may be RFC 7239 obfuscated, `:_abc`).
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let ip = match text.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            let host = match text.strip_prefix('[') {
                Some(bracketed) => bracketed.split_once(']')?.0,
                None => text.split_once(':')?.0,
            };
            host.parse::<IpAddr>().ok()?
        }
    };
    Some(ip.to_canonical())
}

/// A BCP 47 language tag, in its conventional case (`en-US`, `zh-Hant-TW`), or `None` for
/// anything else: it ends up in reports, so it must be short and plain.
fn language_tag(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_LANGUAGE_TAG || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    let mut subtags = text.split('-');
    let primary = subtags.next()?;
    if !(2..=8).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut tag = primary.to_ascii_lowercase();
    for subtag in subtags {
        if subtag.is_empty() || subtag.len() > 8 {
            return None;
        }
        tag.push('-');
        let alphabetic = subtag.bytes().all(|b| b.is_ascii_alphabetic());
        match subtag.len() {
            2 if alphabetic => tag.push_str(&subtag.to_ascii_uppercase()),
            4 if alphabetic => {
                tag.push_str(&subtag[..1].to_ascii_uppercase());
                tag.push_str(&subtag[1..].to_ascii_lowercase());
            }
            _ => tag.push_str(&subtag.to_ascii_lowercase()),
        }
    }
    Some(tag)
}

/// What is kept of a User-Agent: a [`Device`] without the language, which is per request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Agent {
    kind: DeviceType,
    os: Option<String>,
    browser: Option<String>,
}

impl Default for Agent {
    fn default() -> Self {
        Self { kind: DeviceType::Other, os: None, browser: None }
    }
}

/// Parsed User-Agents by a keyed hash of the string, so the strings themselves are not held.
#[derive(Default)]
struct AgentCache {
    hasher: RandomState,
    seen: Mutex<HashMap<u64, Agent>>,
}

impl AgentCache {
    fn agent(&self, user_agent: &str) -> Agent {
        let user_agent = truncate(user_agent, MAX_USER_AGENT_BYTES);
        let key = self.hasher.hash_one(user_agent);
        // A panic elsewhere while holding the lock cannot leave a half-written entry: the map
        // is only ever cleared or given whole values, so a poisoned lock is still usable.
        if let Some(known) = self.seen.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return known.clone();
        }
        let agent = parse_agent(user_agent);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= AGENT_CACHE_LIMIT {
            seen.clear();
        }
        seen.insert(key, agent.clone());
        agent
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    &text[..end]
}

/// Automation that ua-parser does not call a "Spider": headless browsers, HTTP libraries and
/// command-line clients. Matched in the lower-cased User-Agent.
const BOT_TOKENS: &[&str] = &[
    "headless",
    "phantomjs",
    "lighthouse",
    "crawler",
    "spider",
    "curl/",
    "wget/",
    "python-requests/",
    "python-urllib/",
    "go-http-client/",
    "java/",
    "okhttp/",
    "axios/",
    "node-fetch/",
];

/// Consoles and televisions: neither desktop nor mobile, whatever OS they name.
const OTHER_DEVICE_TOKENS: &[&str] = &["xbox", "playstation", "nintendo", "smart-tv", "smarttv", "hbbtv", "crkey"];

const MOBILE_OS: &[&str] = &[
    "iOS",
    "Android",
    "Windows Phone",
    "Windows Mobile",
    "KaiOS",
    "BlackBerry OS",
    "Symbian OS",
    "Firefox OS",
    "Nokia Series 40",
    "Nokia Series 30 Plus",
];

const DESKTOP_OS: &[&str] = &[
    "Windows",
    "Mac OS X",
    "Mac OS",
    "Linux",
    "Chrome OS",
    "Ubuntu",
    "Kubuntu",
    "Fedora",
    "Debian",
    "Linux Mint",
    "Mint",
    "Red Hat",
    "CentOS",
    "Gentoo",
    "Arch Linux",
    "openSUSE",
    "SUSE",
    "Slackware",
    "Mandriva",
    "FreeBSD",
    "OpenBSD",
    "NetBSD",
    "Solaris",
];

fn parse_agent(user_agent: &str) -> Agent {
    let Some(extractor) = UA_EXTRACTOR.as_ref() else { return Agent::default() };
    let (browser, os, device) = extractor.extract(user_agent);
    let browser = browser.and_then(|b| family(b.family));
    let os = os.and_then(|o| family(o.os));
    let (device, brand) = device.map(|d| (Some(d.device), d.brand)).unwrap_or_default();
    let kind = device_type(user_agent, os.as_deref(), device.as_deref(), brand.as_deref());
    Agent { kind, os, browser }
}

/// ua-parser's name for a family, unless it is its "Other" (unknown). Names may be copied from
/// the User-Agent itself, so they are bounded like any text from outside.
fn family(name: Cow<'_, str>) -> Option<String> {
    if name == "Other" {
        return None;
    }
    text::line(name.into_owned(), 64).ok()
}

fn device_type(user_agent: &str, os: Option<&str>, device: Option<&str>, brand: Option<&str>) -> DeviceType {
    let lower = user_agent.to_ascii_lowercase();
    let has = |tokens: &[&str]| tokens.iter().any(|token| lower.contains(token));
    if device == Some("Spider") || has(BOT_TOKENS) {
        return DeviceType::Bot;
    }
    if has(OTHER_DEVICE_TOKENS) {
        return DeviceType::Other;
    }
    let tablet_device = matches!(device, Some("iPad" | "Kindle" | "Generic Tablet"))
        || matches!(brand, Some("Generic_Android_Tablet"))
        || os == Some("BlackBerry Tablet OS");
    // Android phones say "Mobile"; Android tablets don't (Google's own guidance to browsers).
    // Firefox on Android tablets says "Tablet;" instead.
    if tablet_device || lower.contains("tablet;") || (os == Some("Android") && !lower.contains("mobile")) {
        return DeviceType::Tablet;
    }
    let mobile_device = matches!(device, Some("iPhone" | "iPod" | "Generic Smartphone" | "Generic Feature Phone"));
    if mobile_device || lower.contains("mobi") || os.is_some_and(|os| MOBILE_OS.contains(&os)) {
        return DeviceType::Mobile;
    }
    if os.is_some_and(|os| DESKTOP_OS.contains(&os)) {
        return DeviceType::Desktop;
    }
    DeviceType::Other
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use serde_json::json;

    use super::*;

    fn edge(trusted: &[&str]) -> Edge {
        let settings = CollectSettings {
            trusted_proxies: trusted.iter().map(|t| t.to_string()).collect(),
            country_header: "CF-IPCountry".into(),
            ..CollectSettings::default()
        };
        Edge::new(&settings).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn peer(text: &str) -> SocketAddr {
        SocketAddr::new(text.parse().unwrap(), 51234)
    }

    fn client(edge: &Edge, from: &str, pairs: &[(&str, &str)]) -> String {
        edge.client_address(peer(from), &headers(pairs)).ip().to_string()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let spoofed = [("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=198.51.100.7")];
        assert_eq!(client(&edge(&["10.0.0.0/8"]), "192.0.2.50", &spoofed), "192.0.2.50");
        assert_eq!(client(&edge(&[]), "10.1.2.3", &spoofed), "10.1.2.3");
    }

    #[test]
    fn from_a_trusted_peer_the_right_most_untrusted_forwarded_for_entry_wins() {
        let edge = edge(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("x-forwarded-for", "203.0.113.9")], "203.0.113.9"),
            // The left entries are the client's own claims; only the last was added by our proxy.
            (&[("x-forwarded-for", "1.1.1.1, 198.51.100.7,203.0.113.9")], "203.0.113.9"),
            (&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.9 , 10.0.0.2")], "203.0.113.9"),
            (&[("x-forwarded-for", "203.0.113.9:4711")], "203.0.113.9"),
            (&[("x-forwarded-for", "2001:db8:1::77")], "2001:db8:1::77"),
            (&[("x-forwarded-for", "[2001:db8:1::77]:443, 2001:db8:ffff::2")], "2001:db8:1::77"),
            (&[("x-forwarded-for", "::ffff:203.0.113.9")], "203.0.113.9"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(client(&edge, "10.0.0.1", pairs), *expected, "{pairs:?}");
        }
        assert_eq!(client(&edge, "2001:db8:ffff::1", &[("x-forwarded-for", "203.0.113.9")]), "203.0.113.9");
        assert_eq!(client(&edge, "::ffff:10.0.0.1", &[("x-forwarded-for", "203.0.113.9")]), "203.0.113.9");
    }

    #[test]
    fn forwarded_is_read_with_quoted_ipv6_and_ports_before_x_forwarded_for() {
        let edge = edge(&["10.0.0.0/8"]);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("forwarded", r#"for="[2001:db8:cafe::17]:4711""#)], "2001:db8:cafe::17"),
            (&[("forwarded", r#"For="[2001:db8:cafe::17]""#)], "2001:db8:cafe::17"),
            (&[("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")], "192.0.2.60"),
            (&[("forwarded", r#"for=192.0.2.43, for="198.51.100.17:8080";proto=https"#)], "198.51.100.17"),
            (&[("forwarded", "for=192.0.2.43"), ("forwarded", "for=198.51.100.17, for=10.0.0.3")], "198.51.100.17"),
            (&[("forwarded", "for=198.51.100.17:_hidden-port")], "198.51.100.17"),
            (&[("forwarded", "for=192.0.2.60"), ("x-forwarded-for", "203.0.113.9")], "192.0.2.60"),
            // A Forwarded header naming no hop leaves X-Forwarded-For in charge.
            (&[("forwarded", "proto=https"), ("x-forwarded-for", "203.0.113.9")], "203.0.113.9"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(client(&edge, "10.0.0.1", pairs), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_skipped() {
        let edge = edge(&["10.0.0.0/8", "192.0.2.10"]);
        let chain = [("x-forwarded-for", "203.0.113.9, 192.0.2.10, 10.0.0.7, 10.0.0.8")];
        assert_eq!(client(&edge, "10.0.0.1", &chain), "203.0.113.9");
        let forwarded = [("forwarded", "for=203.0.113.9, for=192.0.2.10, for=\"10.0.0.7:80\"")];
        assert_eq!(client(&edge, "10.0.0.1", &forwarded), "203.0.113.9");
        // Only proxies all the way: the farthest one is the best answer there is.
        assert_eq!(client(&edge, "10.0.0.1", &[("x-forwarded-for", "10.0.0.7, 10.0.0.8")]), "10.0.0.7");
    }

    #[test]
    fn malformed_hops_end_the_walk_at_the_last_good_address() {
        let edge = edge(&["10.0.0.0/8"]);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("x-forwarded-for", "203.0.113.9, unknown")], "10.0.0.1"),
            (&[("x-forwarded-for", "203.0.113.9, garbage, 10.0.0.5")], "10.0.0.5"),
            (&[("x-forwarded-for", "")], "10.0.0.1"),
            (&[("x-forwarded-for", ",,,")], "10.0.0.1"),
            (&[("x-forwarded-for", "[2001:db8::1")], "10.0.0.1"),
            (&[("x-forwarded-for", "999.1.1.1")], "10.0.0.1"),
            (&[("forwarded", "for=unknown")], "10.0.0.1"),
            (&[("forwarded", "for=_hidden, for=203.0.113.9")], "203.0.113.9"),
            (&[("forwarded", "for=\"[2001:db8::1\"")], "10.0.0.1"),
            (&[("forwarded", "for")], "10.0.0.1"),
            (&[("forwarded", "for=;for==;;=,=")], "10.0.0.1"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(client(&edge, "10.0.0.1", pairs), *expected, "{pairs:?}");
        }
        let mut binary = HeaderMap::new();
        binary.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        binary.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(edge.client_address(peer("10.0.0.1"), &binary).ip().to_string(), "10.0.0.1");
    }

    #[test]
    fn trusted_proxies_accept_addresses_and_networks_only() {
        assert_eq!(parse_trusted_proxy(" 10.1.2.3 "), Some("10.1.2.3/32".parse().unwrap()));
        assert_eq!(parse_trusted_proxy("10.1.2.3/8"), Some("10.0.0.0/8".parse().unwrap()));
        assert_eq!(parse_trusted_proxy("2001:db8::/32"), Some("2001:db8::/32".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "localhost", "10.0.0.0/8,10.1.0.0/16"] {
            assert_eq!(parse_trusted_proxy(bad), None, "{bad:?}");
        }
        let settings = CollectSettings { trusted_proxies: vec!["nope".into()], ..CollectSettings::default() };
        let error = Edge::new(&settings).unwrap_err().to_string();
        assert!(error.contains("\"nope\""), "{error}");
    }

    #[test]
    fn the_country_header_is_honoured_only_from_trusted_peers_and_invalid_codes_are_ignored() {
        let edge = edge(&["10.0.0.0/8"]);
        let country = |from: &str, code: &str| {
            let headers = headers(&[("cf-ipcountry", code), ("x-forwarded-for", "203.0.113.9")]);
            let client = edge.client_address(peer(from), &headers);
            edge.location(peer(from), &headers, &client).country_code.map(|c| c.to_string())
        };
        assert_eq!(country("10.0.0.1", "FI").as_deref(), Some("FI"));
        assert_eq!(country("10.0.0.1", " se ").as_deref(), Some("SE"));
        assert_eq!(country("192.0.2.50", "FI"), None);
        for invalid in ["XX", "T1", "", "FIN", "ZZ", "1"] {
            assert_eq!(country("10.0.0.1", invalid), None, "{invalid:?}");
        }
        let unconfigured =
            Edge::new(&CollectSettings { trusted_proxies: vec!["10.0.0.0/8".into()], ..CollectSettings::default() })
                .unwrap();
        let headers = headers(&[("cf-ipcountry", "FI")]);
        let client = unconfigured.client_address(peer("10.0.0.1"), &headers);
        assert_eq!(unconfigured.location(peer("10.0.0.1"), &headers, &client), Location::default());
    }

    /// A tiny City database: 203.0.113.0/24 is Helsinki, except 203.0.113.200/29 (Stockholm),
    /// which tells a lookup on the full address from one on the masked network.
    fn geoip_database() -> tempfile::NamedTempFile {
        let mut writer = mmdb_writer::Writer::new("Steward-Test-City");
        let record = |country: &str, region: &str, city: &str| {
            json!({
                "country": { "iso_code": country, "names": { "en": country } },
                "subdivisions": [{ "names": { "en": region } }, { "names": { "en": "second level" } }],
                "city": { "names": { "en": city, "fi": "ei tämä" } },
            })
        };
        writer.insert("203.0.113.0/24".parse::<IpNet>().unwrap(), &record("FI", "Uusimaa", "Helsinki")).unwrap();
        writer.insert("203.0.113.200/29".parse::<IpNet>().unwrap(), &record("SE", "Stockholm", "Stockholm")).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), writer.to_bytes().unwrap()).unwrap();
        file
    }

    fn edge_with_geoip(database: &tempfile::NamedTempFile) -> Edge {
        let settings = CollectSettings {
            trusted_proxies: vec!["10.0.0.0/8".into()],
            country_header: "CF-IPCountry".into(),
            geoip_database: database.path().display().to_string(),
            ..CollectSettings::default()
        };
        Edge::new(&settings).unwrap()
    }

    #[test]
    fn a_geoip_database_gives_country_region_and_city_for_the_full_address() {
        let database = geoip_database();
        let edge = edge_with_geoip(&database);
        assert!(format!("{edge:?}").contains("Steward-Test-City"));
        let locate = |address: &str| {
            let headers = headers(&[("x-forwarded-for", address)]);
            let client = edge.client_address(peer("10.0.0.1"), &headers);
            edge.location(peer("10.0.0.1"), &headers, &client)
        };
        let helsinki = locate("203.0.113.7");
        assert_eq!(helsinki.country_code.map(|c| c.to_string()).as_deref(), Some("FI"));
        assert_eq!(helsinki.region.as_deref(), Some("Uusimaa"));
        assert_eq!(helsinki.city.as_deref(), Some("Helsinki"));
        assert_eq!(locate("203.0.113.201").city.as_deref(), Some("Stockholm"));
        assert_eq!(locate("::ffff:203.0.113.7").city.as_deref(), Some("Helsinki"));
        assert_eq!(locate("198.51.100.1"), Location::default());
        assert_eq!(locate("2001:db8::1"), Location::default());
    }

    #[test]
    fn a_stated_country_keeps_the_databases_city_only_when_they_agree() {
        let database = geoip_database();
        let edge = edge_with_geoip(&database);
        let locate = |country: &str| {
            let headers = headers(&[("x-forwarded-for", "203.0.113.7"), ("cf-ipcountry", country)]);
            let client = edge.client_address(peer("10.0.0.1"), &headers);
            edge.location(peer("10.0.0.1"), &headers, &client)
        };
        assert_eq!(locate("FI").city.as_deref(), Some("Helsinki"));
        let disagreeing = locate("EE");
        assert_eq!(disagreeing.country_code.map(|c| c.to_string()).as_deref(), Some("EE"));
        assert_eq!((disagreeing.region, disagreeing.city), (None, None));
        assert_eq!(locate("XX").city.as_deref(), Some("Helsinki"));
    }

    #[test]
    fn a_missing_or_foreign_geoip_file_is_named_in_the_error() {
        let missing = CollectSettings { geoip_database: "/nonexistent/City.mmdb".into(), ..CollectSettings::default() };
        let error = Edge::new(&missing).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/City.mmdb") && error.contains("cannot read"), "{error}");
        let junk = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(junk.path(), b"not a database").unwrap();
        let foreign =
            CollectSettings { geoip_database: junk.path().display().to_string(), ..CollectSettings::default() };
        let error = Edge::new(&foreign).unwrap_err().to_string();
        assert!(error.contains("not a MaxMind-format"), "{error}");
        let header = CollectSettings { country_header: "bad header".into(), ..CollectSettings::default() };
        assert!(matches!(Edge::new(&header), Err(EdgeError::CountryHeader(_))));
    }

    fn device_of(edge: &Edge, user_agent: &str) -> (DeviceType, Option<String>, Option<String>) {
        let device = edge.device(&headers(&[("user-agent", user_agent)]), None);
        (device.kind, device.os, device.browser)
    }

    #[test]
    fn real_user_agents_reduce_to_device_type_os_and_browser() {
        let edge = edge(&[]);
        let cases: &[(&str, DeviceType, Option<&str>, Option<&str>)] = &[
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                DeviceType::Desktop,
                Some("Windows"),
                Some("Chrome"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                DeviceType::Desktop,
                Some("Windows"),
                Some("Edge"),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
                DeviceType::Desktop,
                Some("Mac OS X"),
                Some("Safari"),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                DeviceType::Mobile,
                Some("iOS"),
                Some("Mobile Safari"),
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                DeviceType::Tablet,
                Some("iOS"),
                Some("Mobile Safari"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                DeviceType::Mobile,
                Some("Android"),
                Some("Chrome Mobile"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                DeviceType::Mobile,
                Some("Android"),
                Some("Chrome Mobile"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                DeviceType::Tablet,
                Some("Android"),
                Some("Chrome"),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                DeviceType::Desktop,
                Some("Linux"),
                Some("Firefox"),
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                DeviceType::Desktop,
                Some("Chrome OS"),
                Some("Chrome"),
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                DeviceType::Bot,
                None,
                Some("Googlebot"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.204 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                DeviceType::Bot,
                Some("Android"),
                Some("Googlebot"),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
                DeviceType::Bot,
                Some("Linux"),
                Some("HeadlessChrome"),
            ),
            ("curl/8.5.0", DeviceType::Bot, None, Some("curl")),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edge/44.18363.8131",
                DeviceType::Other,
                Some("Windows"),
                Some("Edge"),
            ),
            ("", DeviceType::Other, None, None),
            ("something nobody knows", DeviceType::Other, None, None),
        ];
        for (user_agent, kind, os, browser) in cases {
            let expected = (*kind, os.map(str::to_string), browser.map(str::to_string));
            assert_eq!(device_of(&edge, user_agent), expected, "{user_agent}");
            // The second time comes from the cache and must agree.
            assert_eq!(device_of(&edge, user_agent), expected, "{user_agent} (cached)");
        }
        let nothing = edge.device(&HeaderMap::new(), None);
        assert_eq!(
            (nothing.kind, nothing.os, nothing.browser, nothing.language),
            (DeviceType::Other, None, None, None)
        );
    }

    #[test]
    fn odd_user_agents_neither_panic_nor_grow_the_cache_past_its_limit() {
        let edge = edge(&[]);
        let long = format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) {}", "é".repeat(5_000));
        assert_eq!(device_of(&edge, &long).1.as_deref(), Some("Windows"));
        let mut latin1 = HeaderMap::new();
        latin1.insert(header::USER_AGENT, HeaderValue::from_bytes(b"Mozilla/5.0 (X11; Linux x86_64) \xe9").unwrap());
        assert_eq!(edge.device(&latin1, None).os.as_deref(), Some("Linux"));
        for n in 0..(AGENT_CACHE_LIMIT + 10) {
            edge.agents.agent(&format!("probe/{n}"));
        }
        let size = edge.agents.seen.lock().unwrap().len();
        assert!(size <= AGENT_CACHE_LIMIT, "{size}");
    }

    #[test]
    fn the_language_comes_from_the_tracker_else_the_first_accept_language_tag() {
        let edge = edge(&[]);
        let language =
            |accept: &str, given: Option<&str>| edge.device(&headers(&[("accept-language", accept)]), given).language;
        assert_eq!(language("fi-FI,fi;q=0.9,en;q=0.8", None).as_deref(), Some("fi-FI"));
        assert_eq!(language("en-us;q=0.9, fi", None).as_deref(), Some("en-US"));
        assert_eq!(language("ZH-hant-tw", None).as_deref(), Some("zh-Hant-TW"));
        assert_eq!(language("fi-FI", Some("sv-FI")).as_deref(), Some("sv-FI"));
        // A tag the tracker got wrong does not hide the browser's own.
        assert_eq!(language("fi-FI", Some("not a tag")).as_deref(), Some("fi-FI"));
        for invalid in ["*", "", "e", "en_US", "en-", "1234", "en-US-x-a-very-long-private-use-tag-indeed", "<script>"]
        {
            assert_eq!(language(invalid, None), None, "{invalid:?}");
            assert_eq!(language_tag(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn debug_of_a_client_address_never_prints_the_full_address() {
        let edge = edge(&[]);
        let v4 = edge.client_address(peer("203.0.113.77"), &HeaderMap::new());
        assert_eq!(v4.ip(), IpAddr::V4(Ipv4Addr::new(203, 0, 113, 77)));
        assert_eq!(format!("{v4:?}"), "ClientAddress(203.0.113.0/24)");
        assert!(!format!("{v4:#?}").contains("77"));
        let v6 = edge.client_address(peer("2001:db8:1234:5678::abcd"), &HeaderMap::new());
        assert_eq!(format!("{v6:?}"), "ClientAddress(2001:db8:1234::/48)");
        assert_eq!(v4.masked(MaskPolicy::new(16, 32).unwrap()).to_string(), "203.0.0.0/16");
    }

    #[test]
    fn the_vendored_user_agent_regexes_build() {
        assert!(UA_EXTRACTOR.is_some());
        let version = include_str!("../../data/uap-regexes.VERSION");
        assert!(version.starts_with("uap-core@"), "{version}");
    }
}
