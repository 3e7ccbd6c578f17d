//! Free-mail providers (gmail.com, gmx.de, …): an address there names a person, not a company,
//! so no organization is inferred from its domain.
//!
//! The list is vendored from the npm package `free-email-domains`
//! (`data/free-email-domains.txt`); `scripts/update-vendored-lists` refreshes it.

use std::collections::HashSet;
use std::sync::LazyLock;

static LIST: &str = include_str!("../data/free-email-domains.txt");

/// Built on first use: about 14,000 entries borrowed from the embedded text, no copies.
static DOMAINS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| LIST.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect());

/// Whether `domain` (the part after `@`) belongs to a free-mail provider. Case-insensitive; a
/// trailing dot (the DNS root) is ignored.
pub fn is_free_mail(domain: &str) -> bool {
    let domain = domain.trim();
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        DOMAINS.contains(domain.to_ascii_lowercase().as_str())
    } else {
        DOMAINS.contains(domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_big_providers_are_free_mail_in_any_case() {
        for domain in ["gmail.com", "hotmail.com", "yahoo.com", "GMX.de", "Gmail.Com."] {
            assert!(is_free_mail(domain), "{domain}");
        }
    }

    #[test]
    fn company_domains_are_not_free_mail() {
        for domain in ["example.fi", "acme.com", "", ".", "# free-email-domains"] {
            assert!(!is_free_mail(domain), "{domain:?}");
        }
    }

    #[test]
    fn the_vendored_list_is_sorted_lower_case_and_names_its_version() {
        let mut lines = LIST.lines();
        let header = lines.next().unwrap_or_default();
        assert!(header.starts_with("# free-email-domains@"), "{header}");
        let domains: Vec<&str> = lines.collect();
        assert!(domains.len() > 1000);
        assert!(domains.windows(2).all(|pair| pair[0] < pair[1]), "not sorted or has duplicates");
        assert!(domains.iter().all(|d| *d == d.to_ascii_lowercase() && !d.ends_with('.')));
    }
}
