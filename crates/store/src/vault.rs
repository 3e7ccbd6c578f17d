//! Encryption at rest. Each tenant has a random 256-bit data key; record bodies are sealed with
//! AES-256-GCM under a key derived from it, and exact-match lookup keys are HMAC-SHA256 under
//! another derived key (a keyed blind index).
//!
//! Data keys live in a key folder outside the database, each wrapped (AES-256-GCM) by the
//! operator's master key, which comes from a file or the environment and never reaches the
//! database. Destroying a tenant's key file therefore makes every copy of its records
//! unreadable, database backups included (crypto-shredding); a tombstone keeps the key from
//! being silently recreated.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, AeadInOut, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngExt;
use sha2::Sha256;
use steward_domain::TenantId;

const SEALED_V1: u8 = 0x01;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    #[error("the data key of tenant {0} has been destroyed")]
    Destroyed(TenantId),
    #[error("the data key of tenant {0} cannot be unwrapped: wrong master key or a damaged key file")]
    Unwrap(TenantId),
    #[error("a sealed value failed authentication: wrong key or tampered data")]
    Open,
    #[error("key folder: {0}")]
    Io(#[from] std::io::Error),
}

/// The operator's key-encryption key. Never printed, never stored in the database.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn generate() -> Self {
        Self(rand::rng().random())
    }

    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| VaultError::BadMasterKey)?;
        bytes.try_into().map(Self).map_err(|_| VaultError::BadMasterKey)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Reads the key file, or creates it (mode 0600) with a new key when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, VaultError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                write_private(path, key.to_base64().as_bytes())?;
                Ok(key)
            }
            Err(error) => Err(error.into()),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.0))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Writes a new file readable by its owner only; fails if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// What a tenant's data key unlocks: sealing bodies and keyed lookup hashes.
pub struct TenantKeys {
    body: Aes256Gcm,
    lookup: [u8; 32],
    audit: [u8; 32],
    /// The root of every file's own key ([`TenantKeys::file_cipher`]).
    files: [u8; 32],
}

impl fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TenantKeys([redacted])")
    }
}

impl TenantKeys {
    fn derive(data_key: &[u8; 32]) -> Self {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"steward-data-key-v1"), data_key);
        let mut body = [0u8; 32];
        let mut lookup = [0u8; 32];
        let mut files = [0u8; 32];
        // Expanding 32 bytes from SHA-256 cannot fail.
        let _ = hkdf.expand(b"record-body", &mut body);
        let _ = hkdf.expand(b"lookup-key", &mut lookup);
        let mut audit = [0u8; 32];
        let _ = hkdf.expand(b"audit-chain", &mut audit);
        let _ = hkdf.expand(b"file-key", &mut files);
        Self { body: Aes256Gcm::new(&Key::<Aes256Gcm>::from(body)), lookup, audit, files }
    }

    /// The HMAC that chains the tenant's audit log: only a holder of the data key (kept outside
    /// the database) can compute an entry's hash, so rewriting the database is not enough to
    /// rewrite the log unnoticed.
    pub fn audit_mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.audit).expect("HMAC takes any key length")
    }

    /// The cipher of one file: its own key, derived from the tenant's data key, the file's random
    /// `salt` and its `context` (the file's name), so no two files share a key and a file cannot
    /// pass for another. [`crate::sealed_file`] is the format that uses it.
    pub(crate) fn file_cipher(&self, salt: &[u8], context: &[u8]) -> Aes256Gcm {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(salt), &self.files);
        let mut key = [0u8; 32];
        let _ = hkdf.expand_multi_info(&[b"steward-file-v1\0", context], &mut key);
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(key))
    }

    /// `0x01 ‖ nonce ‖ ciphertext+tag`; `context` (table, tenant, id) is authenticated so a
    /// sealed body cannot be moved to another row.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.body, context, plaintext)
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(&self.body, context, sealed)
    }

    /// [`TenantKeys::open`] without a copy: decrypts `sealed` where it lies and hands back the
    /// plaintext part of it (the bulk reads of exports open millions of bodies).
    pub fn open_in_place<'a>(&self, context: &[u8], sealed: &'a mut [u8]) -> Result<&'a [u8], VaultError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_V1 {
            return Err(VaultError::Open);
        }
        let (head, rest) = sealed.split_at_mut(1 + NONCE_LEN);
        let nonce = Nonce::try_from(&head[1..]).map_err(|_| VaultError::Open)?;
        let (message, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| VaultError::Open)?;
        self.body.decrypt_inout_detached(&nonce, context, message.into(), &tag).map_err(|_| VaultError::Open)?;
        Ok(message)
    }

    /// The keyed hash of a normalised value for exact lookups.
    pub fn lookup_key(&self, kind: &str, normalised: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.lookup).expect("HMAC takes any key length");
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(normalised.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

fn seal_with(cipher: &Aes256Gcm, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce_bytes: [u8; NONCE_LEN] = rand::rng().random();
    let nonce = Nonce::from(nonce_bytes);
    // Encryption only fails for inputs beyond GCM's 64 GiB limit, far above any record.
    let ciphertext = cipher.encrypt(&nonce, Payload { msg: plaintext, aad: context }).unwrap_or_default();
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(SEALED_V1);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    out
}

fn open_with(cipher: &Aes256Gcm, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_V1 {
        return Err(VaultError::Open);
    }
    let nonce_bytes: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().map_err(|_| VaultError::Open)?;
    let nonce = Nonce::from(nonce_bytes);
    cipher.decrypt(&nonce, Payload { msg: &sealed[1 + NONCE_LEN..], aad: context }).map_err(|_| VaultError::Open)
}

/// Tenant data keys: wrapped on disk, unwrapped in memory on first use.
pub struct Vault {
    master: MasterKey,
    folder: PathBuf,
    cache: RwLock<HashMap<TenantId, Arc<TenantKeys>>>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vault({})", self.folder.display())
    }
}

impl Vault {
    /// A vault over `folder`, created if missing.
    pub fn open(folder: impl Into<PathBuf>, master: MasterKey) -> Result<Self, VaultError> {
        let folder = folder.into();
        fs::create_dir_all(&folder)?;
        Ok(Self { master, folder, cache: RwLock::new(HashMap::new()) })
    }

    /// The key folder: outside database backups by design. What must outlive a restore (the
    /// erasure ledger's mirror) and the operator's other keys (the attestation signing key) live
    /// beside the tenants' keys.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// True while the tenant's data key file exists.
    pub fn has_key(&self, tenant: TenantId) -> bool {
        self.key_path(tenant).exists()
    }

    fn key_path(&self, tenant: TenantId) -> PathBuf {
        self.folder.join(format!("{tenant}.key"))
    }

    fn tombstone_path(&self, tenant: TenantId) -> PathBuf {
        self.folder.join(format!("{tenant}.destroyed"))
    }

    fn context(tenant: TenantId) -> Vec<u8> {
        let mut context = b"steward-tenant-key-v1\0".to_vec();
        context.extend_from_slice(tenant.as_uuid().as_bytes());
        context
    }

    /// The tenant's keys, creating its data key on first use.
    pub fn keys(&self, tenant: TenantId) -> Result<Arc<TenantKeys>, VaultError> {
        if let Some(keys) = self.cache.read().ok().and_then(|cache| cache.get(&tenant).cloned()) {
            return Ok(keys);
        }
        if self.tombstone_path(tenant).exists() {
            return Err(VaultError::Destroyed(tenant));
        }
        let path = self.key_path(tenant);
        let wrapped = match fs::read(&path) {
            Ok(wrapped) => wrapped,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let data_key: [u8; 32] = rand::rng().random();
                let wrapped = seal_with(&self.master.cipher(), &Self::context(tenant), &data_key);
                match write_private(&path, &wrapped) {
                    Ok(()) => wrapped,
                    // Another process created it first: use theirs.
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => fs::read(&path)?,
                    Err(error) => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        };
        let data_key = open_with(&self.master.cipher(), &Self::context(tenant), &wrapped)
            .map_err(|_| VaultError::Unwrap(tenant))?;
        let data_key: [u8; 32] = data_key.try_into().map_err(|_| VaultError::Unwrap(tenant))?;
        let keys = Arc::new(TenantKeys::derive(&data_key));
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(tenant, keys.clone());
        }
        Ok(keys)
    }

    fn subject_key_path(&self, tenant: TenantId, anchor: uuid::Uuid) -> PathBuf {
        self.folder.join("subject-keys").join(tenant.to_string()).join(format!("{anchor}.key"))
    }

    fn subject_context(tenant: TenantId, anchor: uuid::Uuid) -> Vec<u8> {
        let mut context = b"steward-subject-key-v1\0".to_vec();
        context.extend_from_slice(tenant.as_uuid().as_bytes());
        context.extend_from_slice(anchor.as_bytes());
        context
    }

    /// Seals `plaintext` under the key of one person's request or record (`anchor`), created on
    /// first use: what must be kept as evidence about a person (the values a rectification
    /// replaced) without outliving their erasure, which destroys that key
    /// ([`Vault::destroy_subject_keys`]). Like data keys, these keys live in the key folder,
    /// outside database backups, so a restored database cannot bring the values back.
    pub fn seal_for_subject(
        &self,
        tenant: TenantId,
        anchor: uuid::Uuid,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let path = self.subject_key_path(tenant, anchor);
        let context = Self::subject_context(tenant, anchor);
        let wrapped = match fs::read(&path) {
            Ok(wrapped) => wrapped,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::rng().random();
                let wrapped = seal_with(&self.master.cipher(), &context, &key);
                match write_private(&path, &wrapped) {
                    Ok(()) => wrapped,
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => fs::read(&path)?,
                    Err(error) => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        };
        let cipher = self.subject_cipher(tenant, &context, &wrapped)?;
        Ok(seal_with(&cipher, &context, plaintext))
    }

    /// Opens what [`Vault::seal_for_subject`] sealed; `None` once the key is destroyed.
    pub fn open_for_subject(
        &self,
        tenant: TenantId,
        anchor: uuid::Uuid,
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let wrapped = match fs::read(self.subject_key_path(tenant, anchor)) {
            Ok(wrapped) => wrapped,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let context = Self::subject_context(tenant, anchor);
        let cipher = self.subject_cipher(tenant, &context, &wrapped)?;
        open_with(&cipher, &context, sealed).map(Some)
    }

    fn subject_cipher(&self, tenant: TenantId, context: &[u8], wrapped: &[u8]) -> Result<Aes256Gcm, VaultError> {
        let key = open_with(&self.master.cipher(), context, wrapped).map_err(|_| VaultError::Unwrap(tenant))?;
        let key: [u8; 32] = key.try_into().map_err(|_| VaultError::Unwrap(tenant))?;
        Ok(Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)))
    }

    /// Destroys the keys of these anchors: what was sealed for them can no longer be read
    /// anywhere, database backups included. Keys that never existed are skipped.
    pub fn destroy_subject_keys(&self, tenant: TenantId, anchors: &[uuid::Uuid]) -> Result<u64, VaultError> {
        let mut destroyed = 0;
        for anchor in anchors {
            let path = self.subject_key_path(tenant, *anchor);
            if let Ok(metadata) = fs::metadata(&path) {
                let len = usize::try_from(metadata.len()).unwrap_or(0);
                fs::write(&path, vec![0u8; len])?;
                fs::File::open(&path)?.sync_all()?;
                fs::remove_file(&path)?;
                destroyed += 1;
            }
        }
        Ok(destroyed)
    }

    /// Destroys the tenant's data key for good: its records become unreadable everywhere.
    pub fn destroy(&self, tenant: TenantId) -> Result<(), VaultError> {
        write_private(&self.tombstone_path(tenant), b"destroyed")
            .or_else(|error| if error.kind() == std::io::ErrorKind::AlreadyExists { Ok(()) } else { Err(error) })?;
        let path = self.key_path(tenant);
        if let Ok(metadata) = fs::metadata(&path) {
            // Overwrite before unlinking so the bytes do not linger in the file's blocks.
            let len = usize::try_from(metadata.len()).unwrap_or(0);
            fs::write(&path, vec![0u8; len])?;
            fs::remove_file(&path)?;
        }
        match fs::remove_dir_all(self.folder.join("subject-keys").join(tenant.to_string())) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(&tenant);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path().join("keys"), MasterKey::generate()).unwrap();
        (dir, vault)
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let (_dir, vault) = vault();
        let a = vault.keys(TenantId::new()).unwrap();
        let b = vault.keys(TenantId::new()).unwrap();
        let sealed = a.seal(b"leads/1", b"aino@example.fi");
        assert!(!sealed.windows(4).any(|w| w == b"aino"));
        assert_eq!(a.open(b"leads/1", &sealed).unwrap(), b"aino@example.fi");
        assert!(a.open(b"leads/2", &sealed).is_err(), "moved to another row");
        assert!(b.open(b"leads/1", &sealed).is_err(), "another tenant's key");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(a.open(b"leads/1", &tampered).is_err());
    }

    #[test]
    fn lookup_keys_are_keyed_per_tenant() {
        let (_dir, vault) = vault();
        let a = vault.keys(TenantId::new()).unwrap();
        let b = vault.keys(TenantId::new()).unwrap();
        assert_eq!(a.lookup_key("email", "x@y.fi"), a.lookup_key("email", "x@y.fi"));
        assert_ne!(a.lookup_key("email", "x@y.fi"), b.lookup_key("email", "x@y.fi"));
        assert_ne!(a.lookup_key("email", "x@y.fi"), a.lookup_key("phone", "x@y.fi"));
    }

    #[test]
    fn keys_survive_a_restart_and_need_the_right_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate();
        let tenant = TenantId::new();
        let sealed = Vault::open(dir.path(), master.clone()).unwrap().keys(tenant).unwrap().seal(b"c", b"data");
        let again = Vault::open(dir.path(), master).unwrap();
        assert_eq!(again.keys(tenant).unwrap().open(b"c", &sealed).unwrap(), b"data");
        let wrong = Vault::open(dir.path(), MasterKey::generate()).unwrap();
        assert!(matches!(wrong.keys(tenant), Err(VaultError::Unwrap(_))));
    }

    #[test]
    fn a_destroyed_key_is_gone_for_good() {
        let (_dir, vault) = vault();
        let tenant = TenantId::new();
        let sealed = vault.keys(tenant).unwrap().seal(b"c", b"data");
        vault.destroy(tenant).unwrap();
        assert!(matches!(vault.keys(tenant), Err(VaultError::Destroyed(_))), "not silently recreated");
        assert!(!vault.key_path(tenant).exists());
        drop(sealed);
    }

    #[test]
    fn values_sealed_for_a_subject_open_until_their_key_is_destroyed() {
        let (_dir, vault) = vault();
        let tenant = TenantId::new();
        let (anchor, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let sealed = vault.seal_for_subject(tenant, anchor, b"aino@example.fi").unwrap();
        let kept = vault.seal_for_subject(tenant, other, b"someone else").unwrap();
        assert!(!sealed.windows(4).any(|w| w == b"aino"));
        assert_eq!(vault.open_for_subject(tenant, anchor, &sealed).unwrap().unwrap(), b"aino@example.fi");
        assert!(vault.open_for_subject(tenant, other, &sealed).is_err(), "another anchor's key");
        assert!(vault.open_for_subject(TenantId::new(), anchor, &sealed).unwrap().is_none(), "another tenant");
        assert_eq!(vault.destroy_subject_keys(tenant, &[anchor, uuid::Uuid::now_v7()]).unwrap(), 1);
        assert_eq!(vault.open_for_subject(tenant, anchor, &sealed).unwrap(), None);
        assert_eq!(vault.open_for_subject(tenant, other, &kept).unwrap().unwrap(), b"someone else");
    }

    #[test]
    fn master_keys_parse_and_hide() {
        let key = MasterKey::generate();
        assert_eq!(MasterKey::from_base64(&key.to_base64()).unwrap().0, key.0);
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
    }
}
