//! Reading back what this crate already validated. A record's stored body is sealed and
//! authenticated (AES-GCM, bound to its row), so every value in it passed its `parse` when it
//! was written; running the parsers again on each read (libphonenumber, IDNA, URL parsing) made
//! reading and exporting several times slower. Inside [`trusted`], deserialising a validated
//! type keeps the stored text as it is; everywhere else deserialising runs the full parser.

use std::cell::Cell;

thread_local! {
    static TRUSTED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read` with validated types taking their stored text as is. Only for bytes this
/// program wrote and authenticated itself, never for input from outside.
pub fn trusted<T>(read: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            TRUSTED.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(TRUSTED.with(|flag| flag.replace(true)));
    read()
}

pub(crate) fn is_trusted() -> bool {
    TRUSTED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Email, WebUrl};

    #[test]
    fn trust_is_scoped_and_outside_it_everything_is_parsed() {
        let bad = "\"not an email\"";
        assert!(serde_json::from_str::<Email>(bad).is_err());
        let inside: Email = trusted(|| serde_json::from_str(bad)).unwrap();
        assert_eq!(inside.as_str(), "not an email");
        assert!(serde_json::from_str::<Email>(bad).is_err(), "trust ends with the closure");
        assert!(serde_json::from_str::<WebUrl>("\"ftp://x\"").is_err());
        assert!(trusted(|| trusted(is_trusted) && is_trusted()), "nesting keeps trust until the outer end");
        assert!(!is_trusted());
    }
}
