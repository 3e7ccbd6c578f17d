//! ZIP archives of several files (an access request's records, a tenant's switching archive),
//! each member streamed in, deflated, with a manifest of SHA-256 sums written last so a
//! receiver can check every member.
//!
//! The ZIP is written front to back without seeking (each member's sizes and CRC follow it in a
//! data descriptor, as ZIP allows), so it can go through a writer that cannot rewrite what it
//! wrote: the encrypted files of the file store.

use std::io::Write;

use sha2::{Digest, Sha256};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, StreamWriter, ZipWriter};

use crate::ExportError;

impl From<zip::result::ZipError> for ExportError {
    fn from(error: zip::result::ZipError) -> Self {
        match error {
            zip::result::ZipError::Io(error) => Self::Io(error),
            other => Self::Io(std::io::Error::other(other.to_string())),
        }
    }
}

/// A ZIP being written: members one after another, then [`Archive::finish`].
#[allow(missing_debug_implementations)]
pub struct Archive<W: Write + Send> {
    zip: ZipWriter<StreamWriter<W>>,
    /// `(name, bytes, sha256 hex)` of every member so far.
    members: Vec<(String, u64, String)>,
}

impl<W: Write + Send> Archive<W> {
    pub fn new(out: W) -> Self {
        Self { zip: ZipWriter::new_stream(out), members: Vec::new() }
    }

    /// Adds a member whose content `write` produces.
    pub fn member<T>(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut (dyn Write + Send)) -> Result<T, ExportError>,
    ) -> Result<T, ExportError> {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(6))
            .large_file(false);
        self.zip.start_file(name, options)?;
        let mut sink = Summing { inner: &mut self.zip, hash: Sha256::new(), bytes: 0 };
        let value = write(&mut sink)?;
        let (bytes, hash) = (sink.bytes, sink.hash.finalize());
        self.members.push((name.to_string(), bytes, hex(&hash)));
        Ok(value)
    }

    /// `(name, bytes, sha256 hex)` of every member written so far.
    pub fn members(&self) -> &[(String, u64, String)] {
        &self.members
    }

    pub fn add(&mut self, name: &str, content: &[u8]) -> Result<(), ExportError> {
        self.member(name, |out| Ok(out.write_all(content)?))
    }

    /// Writes `MANIFEST.sha256` (`sha256sum -c` format) and the ZIP directory.
    pub fn finish(mut self) -> Result<W, ExportError> {
        let manifest: String = self.members.iter().map(|(name, _, sha256)| format!("{sha256}  {name}\n")).collect();
        self.add("MANIFEST.sha256", manifest.as_bytes())?;
        Ok(self.zip.finish()?.into_inner())
    }
}

struct Summing<'a, W: Write> {
    inner: &'a mut W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Summing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_a_manifest_of_their_sums_come_back_out() {
        let mut archive = Archive::new(Vec::new());
        archive.add("a.json", b"[1,2]").unwrap();
        archive.member("b.csv", |out| Ok(out.write_all(b"x\r\n1\r\n")?)).unwrap();
        let bytes = archive.finish().unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 3);
        let mut manifest = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("MANIFEST.sha256").unwrap(), &mut manifest).unwrap();
        let expected = hex(&Sha256::digest(b"[1,2]"));
        assert!(manifest.contains(&format!("{expected}  a.json\n")), "{manifest}");
    }
}
