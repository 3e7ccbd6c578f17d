//! Files encrypted at rest (export files, access and switching archives), readable from any
//! offset without decrypting what comes before it.
//!
//! Format, version 1:
//!
//! ```text
//! header  = "STWDFIL" 0x01 ‖ salt (32 random bytes) ‖ nonce prefix (7 random bytes)   47 bytes
//! chunk i = AES-256-GCM(plaintext bytes [i·65536, (i+1)·65536)) ‖ tag                  ≤ 65552 bytes
//! ```
//!
//! Every chunk holds 64 KiB of plaintext except the last, which holds 0 to 64 KiB (an empty
//! file is one empty last chunk). The chunks follow the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway, Vizár 2015, RustCrypto's `aead-stream`, big-endian flavour): chunk i's nonce is the
//! prefix ‖ i as 32-bit big-endian ‖ 1 if it is the last chunk else 0, and the header is its
//! associated data. So a chunk moved, dropped or repeated, a file cut at any byte (even at a
//! chunk boundary), or a changed header fails authentication. The key is the file's own:
//! [`TenantKeys::file_cipher`] derives it from the tenant's data key, the salt and the file's
//! name, so a file renamed or copied over another does not open, and destroying the tenant's
//! data key makes every file of it unreadable with its records.
//!
//! The plaintext length follows from the file's length alone, so a reader knows it (and serves
//! byte ranges of it) without decrypting; it checks the last chunk when it opens the file so a
//! cut file fails before its first byte is served. Memory stays at one chunk either way.

use std::io::{self, Read, Seek, SeekFrom, Write};

use aead_stream::{NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::array::Array;
use rand::RngExt;
use sha2::{Digest, Sha256};

use crate::vault::TenantKeys;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const SEALED_CHUNK: u64 = (CHUNK + TAG) as u64;
const MAGIC: &[u8; 8] = b"STWDFIL\x01";
const SALT: usize = 32;
const PREFIX: usize = 7;
/// Bytes before the first chunk.
pub const HEADER: usize = MAGIC.len() + SALT + PREFIX;

type Stream = StreamBE32<Aes256Gcm>;

fn stream_of(keys: &TenantKeys, header: &[u8; HEADER], context: &[u8]) -> Stream {
    let salt = &header[MAGIC.len()..MAGIC.len() + SALT];
    let prefix: [u8; PREFIX] = header[MAGIC.len() + SALT..].try_into().unwrap_or_default();
    Stream::from_aead(keys.file_cipher(salt, context), &Array::from(prefix))
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("encrypted file: {what}"))
}

/// The length and SHA-256 of what a [`SealedWriter`] was given: the file as its readers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plaintext {
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Encrypts what is written to it into `inner`, chunk by chunk; [`SealedWriter::finish`] writes
/// the last chunk, without which the file does not open.
pub struct SealedWriter<W: Write> {
    inner: W,
    stream: Stream,
    header: [u8; HEADER],
    /// The plaintext of the chunk being filled; sealed in place when it is written out.
    buffer: Vec<u8>,
    index: u32,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> std::fmt::Debug for SealedWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedWriter({} bytes)", self.bytes)
    }
}

impl<W: Write> SealedWriter<W> {
    /// Writes the header of a new file named `context` into `inner`.
    pub fn new(keys: &TenantKeys, context: &[u8], mut inner: W) -> io::Result<Self> {
        let mut header = [0u8; HEADER];
        header[..MAGIC.len()].copy_from_slice(MAGIC);
        rand::rng().fill(&mut header[MAGIC.len()..]);
        inner.write_all(&header)?;
        Ok(Self {
            inner,
            stream: stream_of(keys, &header, context),
            header,
            buffer: Vec::with_capacity(CHUNK + TAG),
            index: 0,
            hash: Sha256::new(),
            bytes: 0,
        })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        self.stream
            .encrypt_in_place(self.index, last, &self.header, &mut self.buffer)
            .map_err(|_| io::Error::other("encrypting a file chunk failed"))?;
        self.inner.write_all(&self.buffer)?;
        self.buffer.clear();
        if !last {
            self.index = self
                .index
                .checked_add(1)
                .ok_or_else(|| io::Error::new(io::ErrorKind::FileTooLarge, "encrypted files stop at 256 TiB"))?;
        }
        Ok(())
    }

    /// Seals the last chunk and hands back the inner writer (flushed) and what the file holds.
    pub fn finish(mut self) -> io::Result<(W, Plaintext)> {
        self.seal(true)?;
        self.inner.flush()?;
        let sha256 = self.hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok((self.inner, Plaintext { bytes: self.bytes, sha256 }))
    }
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more data comes: only then is it known not to be last.
        if self.buffer.len() == CHUNK {
            self.seal(false)?;
        }
        let take = data.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&data[..take]);
        self.hash.update(&data[..take]);
        self.bytes += take as u64;
        Ok(take)
    }

    /// Flushes what is sealed; the chunk being filled stays until it is full or finished.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the plaintext of a file a [`SealedWriter`] wrote, from any offset.
pub struct SealedReader<R: Read + Seek> {
    inner: R,
    stream: Stream,
    header: [u8; HEADER],
    /// Sealed bytes after the header.
    body: u64,
    chunks: u64,
    length: u64,
    position: u64,
    /// The plaintext of chunk `loaded`.
    chunk: Vec<u8>,
    loaded: Option<u64>,
}

impl<R: Read + Seek> std::fmt::Debug for SealedReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedReader({} of {} bytes)", self.position, self.length)
    }
}

impl<R: Read + Seek> SealedReader<R> {
    /// Opens a file named `context`; fails if it is not one of ours, was cut or changed, or was
    /// sealed with another key or under another name.
    pub fn open(keys: &TenantKeys, context: &[u8], mut inner: R) -> io::Result<Self> {
        let total = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(0))?;
        let body =
            total.checked_sub(HEADER as u64).filter(|body| *body >= TAG as u64).ok_or_else(|| damaged("too short"))?;
        let mut header = [0u8; HEADER];
        inner.read_exact(&mut header)?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(damaged("not a file of this format"));
        }
        let chunks = body.div_ceil(SEALED_CHUNK);
        if body - (chunks - 1) * SEALED_CHUNK < TAG as u64 || chunks > u64::from(u32::MAX) + 1 {
            return Err(damaged("cut in the middle of a chunk"));
        }
        let mut reader = Self {
            stream: stream_of(keys, &header, context),
            inner,
            header,
            body,
            chunks,
            length: body - chunks * TAG as u64,
            position: 0,
            chunk: Vec::with_capacity(CHUNK + TAG),
            loaded: None,
        };
        reader.load(chunks - 1)?;
        Ok(reader)
    }

    /// The plaintext length.
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    fn load(&mut self, index: u64) -> io::Result<()> {
        if self.loaded == Some(index) {
            return Ok(());
        }
        self.loaded = None;
        let last = index + 1 == self.chunks;
        let start = index * SEALED_CHUNK;
        let size = if last { self.body - start } else { SEALED_CHUNK };
        self.inner.seek(SeekFrom::Start(HEADER as u64 + start))?;
        self.chunk.resize(usize::try_from(size).map_err(|_| damaged("chunk too large"))?, 0);
        self.inner.read_exact(&mut self.chunk)?;
        let position = u32::try_from(index).map_err(|_| damaged("too many chunks"))?;
        self.stream.decrypt_in_place(position, last, &self.header, &mut self.chunk).map_err(|_| {
            damaged("a chunk failed authentication: the file was changed or cut, or belongs to another key or name")
        })?;
        self.loaded = Some(index);
        Ok(())
    }
}

impl<R: Read + Seek> Read for SealedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.length || out.is_empty() {
            return Ok(0);
        }
        let chunk = CHUNK as u64;
        self.load(self.position / chunk)?;
        let offset = usize::try_from(self.position % chunk).map_err(|_| damaged("offset"))?;
        let count = out.len().min(self.chunk.len() - offset);
        out[..count].copy_from_slice(&self.chunk[offset..offset + count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl<R: Read + Seek> Seek for SealedReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(offset) => {
                self.position = offset;
                return Ok(offset);
            }
            SeekFrom::End(delta) => (self.length, delta),
            SeekFrom::Current(delta) => (self.position, delta),
        };
        self.position = base
            .checked_add_signed(delta)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the file"))?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use steward_domain::TenantId;

    use super::*;
    use crate::vault::{MasterKey, Vault};

    fn keys() -> (tempfile::TempDir, Vault, TenantId) {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path().join("keys"), MasterKey::generate()).unwrap();
        (dir, vault, TenantId::new())
    }

    /// Deterministic bytes that differ from chunk to chunk.
    fn plaintext(length: usize) -> Vec<u8> {
        (0..length).map(|i| (i % 251) as u8 ^ (i / CHUNK) as u8).collect()
    }

    fn seal(keys: &TenantKeys, name: &[u8], data: &[u8], step: usize) -> (Vec<u8>, Plaintext) {
        let mut writer = SealedWriter::new(keys, name, Vec::new()).unwrap();
        for piece in data.chunks(step.max(1)) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    fn open_all(keys: &TenantKeys, name: &[u8], sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut reader = SealedReader::open(keys, name, Cursor::new(sealed))?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn files_of_any_length_come_back_whole_with_their_length_and_hash() {
        let (_dir, vault, tenant) = keys();
        let keys = vault.keys(tenant).unwrap();
        for length in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17] {
            let data = plaintext(length);
            for step in [1000, CHUNK, 7 * CHUNK] {
                let (sealed, summary) = seal(&keys, b"exports/t/1.csv", &data, step);
                assert_eq!(summary.bytes, length as u64);
                assert_eq!(summary.sha256, crate::audit::hex(&Sha256::digest(&data)));
                let chunks = length.div_ceil(CHUNK).max(1);
                assert_eq!(sealed.len(), HEADER + length + chunks * TAG, "length {length}");
                let reader = SealedReader::open(&keys, b"exports/t/1.csv", Cursor::new(&sealed)).unwrap();
                assert_eq!(reader.len(), length as u64);
                assert_eq!(open_all(&keys, b"exports/t/1.csv", &sealed).unwrap(), data, "length {length}");
            }
        }
    }

    #[test]
    fn the_plaintext_is_not_in_the_file() {
        let (_dir, vault, tenant) = keys();
        let keys = vault.keys(tenant).unwrap();
        let data = b"aino.virtanen@example.fi,0195c3b4-visitor\r\n".repeat(5000);
        let (sealed, _) = seal(&keys, b"f", &data, 4096);
        assert!(!sealed.windows(13).any(|w| w == b"aino.virtanen"));
    }

    #[test]
    fn a_changed_byte_anywhere_fails() {
        let (_dir, vault, tenant) = keys();
        let keys = vault.keys(tenant).unwrap();
        let data = plaintext(2 * CHUNK + 100);
        let (sealed, _) = seal(&keys, b"f", &data, CHUNK);
        for at in [0, 8, HEADER - 1, HEADER, HEADER + CHUNK, HEADER + CHUNK + TAG + 5, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[at] ^= 0x01;
            assert!(open_all(&keys, b"f", &tampered).is_err(), "byte {at} changed");
        }
    }

    #[test]
    fn a_cut_file_fails_even_at_a_chunk_boundary() {
        let (_dir, vault, tenant) = keys();
        let keys = vault.keys(tenant).unwrap();
        let data = plaintext(3 * CHUNK);
        let (sealed, _) = seal(&keys, b"f", &data, CHUNK);
        let boundary = HEADER + 2 * (CHUNK + TAG);
        for cut in [boundary, boundary - 1, boundary + 1, HEADER + TAG, HEADER, 10, 0, sealed.len() - 1] {
            let error = SealedReader::open(&keys, b"f", Cursor::new(&sealed[..cut])).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
        // Appending a chunk of another file sealed under the same name does not pass either.
        let (other, _) = seal(&keys, b"f", &data, CHUNK);
        let mut longer = sealed.clone();
        longer.extend_from_slice(&other[HEADER..HEADER + CHUNK + TAG]);
        assert!(open_all(&keys, b"f", &longer).is_err());
    }

    #[test]
    fn chunks_cannot_be_reordered_or_swapped_between_files() {
        let (_dir, vault, tenant) = keys();
        let keys = vault.keys(tenant).unwrap();
        let data = plaintext(3 * CHUNK + 10);
        let (sealed, _) = seal(&keys, b"f", &data, CHUNK);
        let chunk = |file: &[u8], i: usize| file[HEADER + i * (CHUNK + TAG)..HEADER + (i + 1) * (CHUNK + TAG)].to_vec();
        let mut swapped = sealed[..HEADER].to_vec();
        for i in [1, 0, 2] {
            swapped.extend(chunk(&sealed, i));
        }
        swapped.extend_from_slice(&sealed[HEADER + 3 * (CHUNK + TAG)..]);
        assert!(open_all(&keys, b"f", &swapped).is_err(), "reordered");

        let (other, _) = seal(&keys, b"f", &data, CHUNK);
        let mut mixed = sealed.clone();
        mixed[HEADER..HEADER + CHUNK + TAG].copy_from_slice(&chunk(&other, 0));
        assert!(open_all(&keys, b"f", &mixed).is_err(), "a chunk of another file with the same plaintext");
    }

    #[test]
    fn another_name_or_another_tenants_key_does_not_open_it() {
        let (_dir, vault, tenant) = keys();
        let keys = vault.keys(tenant).unwrap();
        let (sealed, _) = seal(&keys, b"exports/t/1.csv", b"data", 10);
        assert!(SealedReader::open(&keys, b"exports/t/2.csv", Cursor::new(&sealed)).is_err());
        let other = vault.keys(TenantId::new()).unwrap();
        assert!(SealedReader::open(&other, b"exports/t/1.csv", Cursor::new(&sealed)).is_err());
        assert!(
            SealedReader::open(
                &keys,
                b"exports/t/1.csv",
                Cursor::new(b"plain text, not sealed at all, long enough to pass as one".as_slice())
            )
            .is_err()
        );
    }

    #[test]
    fn a_destroyed_tenant_key_leaves_its_files_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate();
        let tenant = TenantId::new();
        let vault = Vault::open(dir.path(), master.clone()).unwrap();
        let (sealed, _) = seal(&vault.keys(tenant).unwrap(), b"f", b"personal", 10);
        vault.destroy(tenant).unwrap();
        let again = Vault::open(dir.path(), master).unwrap();
        assert!(again.keys(tenant).is_err(), "no key, so no file key");
        assert!(!sealed.windows(8).any(|w| w == b"personal"));
    }

    #[test]
    fn reads_start_at_any_offset_including_chunk_boundaries_and_the_last_byte() {
        let (_dir, vault, tenant) = keys();
        let keys = vault.keys(tenant).unwrap();
        let length = 3 * CHUNK + 123;
        let data = plaintext(length);
        let (sealed, _) = seal(&keys, b"f", &data, 5000);
        let mut reader = SealedReader::open(&keys, b"f", Cursor::new(&sealed)).unwrap();
        let offsets = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK, length - 1, length];
        for &start in offsets.iter().rev() {
            for count in [0, 1, 2, 100, CHUNK, 2 * CHUNK + 7] {
                let end = (start + count).min(length);
                assert_eq!(reader.seek(SeekFrom::Start(start as u64)).unwrap(), start as u64);
                let mut out = vec![0; end - start];
                reader.read_exact(&mut out).unwrap();
                assert_eq!(out, data[start..end], "{start}..{end}");
            }
        }
        assert_eq!(reader.seek(SeekFrom::End(-1)).unwrap(), length as u64 - 1);
        let mut last = Vec::new();
        reader.read_to_end(&mut last).unwrap();
        assert_eq!(last, [data[length - 1]]);
        assert_eq!(reader.seek(SeekFrom::Current(-2)).unwrap(), length as u64 - 2);
        assert!(reader.seek(SeekFrom::Current(-(length as i64))).is_err(), "before the start");
        reader.seek(SeekFrom::Start(length as u64 + 10)).unwrap();
        assert_eq!(reader.read(&mut [0; 4]).unwrap(), 0, "past the end reads nothing");
    }
}
