//! Where export files, access archives and switching archives are kept: behind [`FileStore`], a
//! local folder by default. A file is written under a temporary name and appears under its key
//! only when [`FileStore::commit`] has synced and renamed it, so a reader never sees half a file.
//!
//! Files that hold personal data are encrypted at rest with the tenant's key, like its records:
//! written through [`create_sealed`](FileStore::create_sealed) and read through
//! [`open_sealed`](FileStore::open_sealed), in the chunked format of
//! [`steward_store::sealed_file`] (AES-256-GCM in 64 KiB chunks, the STREAM construction, a key
//! of the file's own derived from the tenant's data key and the file's name). Readers see the
//! plaintext, its length and its SHA-256, and read it from any offset, so downloads keep their
//! `ETag` and `Range`. Only what must outlive the tenant's key (the signed erasure attestation,
//! which holds no personal data) is stored as is.

use std::fs;
use std::io;
use std::path::PathBuf;

use steward_store::TenantKeys;
use steward_store::sealed_file::{SealedReader, SealedWriter};

pub trait FileStore: Send + Sync + std::fmt::Debug {
    /// A new, empty file for `key` (open for reading and writing), replacing any unfinished one
    /// from an earlier attempt.
    fn create(&self, key: &str) -> io::Result<fs::File>;
    /// Makes the written file durable and visible under `key`.
    fn commit(&self, key: &str) -> io::Result<()>;
    /// The finished file and its length, if there is one.
    fn open(&self, key: &str) -> io::Result<Option<(fs::File, u64)>>;
    fn remove(&self, key: &str) -> io::Result<()>;
    /// Removes every file of a tenant: whatever lies under `<area>/<tenant>/` for every area
    /// (`exports`, `subject-requests`, `archives`, and any added later), finished or not.
    fn remove_tenant(&self, tenant: &str) -> io::Result<RemovedFiles>;
}

impl dyn FileStore {
    /// A new file for `key` encrypted with the tenant's `keys`; finish the writer
    /// ([`SealedWriter::finish`]) before [`FileStore::commit`], or the file does not open.
    pub fn create_sealed(&self, keys: &TenantKeys, key: &str) -> io::Result<SealedWriter<fs::File>> {
        SealedWriter::new(keys, key.as_bytes(), self.create(key)?)
    }

    /// The plaintext of a finished file [`create_sealed`](FileStore::create_sealed) wrote, if
    /// there is one; an error if it was changed, cut, or the tenant's key no longer opens it.
    pub fn open_sealed(&self, keys: &TenantKeys, key: &str) -> io::Result<Option<SealedReader<fs::File>>> {
        match self.open(key)? {
            Some((file, _)) => SealedReader::open(keys, key.as_bytes(), file).map(Some),
            None => Ok(None),
        }
    }
}

/// What [`FileStore::remove_tenant`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemovedFiles {
    pub files: u64,
    pub bytes: u64,
}

/// Files in a local folder (`exports.files_dir`, by default `<data_dir>/files`).
#[derive(Debug, Clone)]
pub struct LocalFiles {
    root: PathBuf,
}

impl LocalFiles {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Keys are ours (`exports/<tenant>/<job>.csv`); anything that could leave the folder is refused.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
        if safe {
            Ok(self.root.join(key))
        } else {
            Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad file key {key:?}")))
        }
    }

    fn partial(&self, key: &str) -> io::Result<PathBuf> {
        let mut path = self.path(key)?.into_os_string();
        path.push(".partial");
        Ok(path.into())
    }
}

impl FileStore for LocalFiles {
    fn create(&self, key: &str) -> io::Result<fs::File> {
        let partial = self.partial(key)?;
        if let Some(parent) = partial.parent() {
            fs::create_dir_all(parent)?;
        }
        // Readable too: a writer that seeks (ZIP) hashes what it wrote by reading it back.
        fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(partial)
    }

    fn commit(&self, key: &str) -> io::Result<()> {
        let partial = self.partial(key)?;
        fs::File::open(&partial)?.sync_all()?;
        let path = self.path(key)?;
        fs::rename(&partial, &path)?;
        if let Some(parent) = path.parent() {
            // The rename itself must survive a crash.
            fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    fn open(&self, key: &str) -> io::Result<Option<(fs::File, u64)>> {
        match fs::File::open(self.path(key)?) {
            Ok(file) => {
                let length = file.metadata()?.len();
                Ok(Some((file, length)))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn remove(&self, key: &str) -> io::Result<()> {
        for path in [self.path(key)?, self.partial(key)?] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn remove_tenant(&self, tenant: &str) -> io::Result<RemovedFiles> {
        // One path segment of ours (a tenant id): nothing that could reach another folder.
        if tenant.contains('/') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad tenant folder {tenant:?}")));
        }
        self.path(tenant)?;
        let mut removed = RemovedFiles::default();
        let areas = match fs::read_dir(&self.root) {
            Ok(areas) => areas,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(removed),
            Err(error) => return Err(error),
        };
        for area in areas {
            let area = area?;
            if !area.file_type()?.is_dir() {
                continue;
            }
            let folder = area.path().join(tenant);
            if folder.is_dir() {
                remove_tree(&folder, &mut removed)?;
            }
        }
        Ok(removed)
    }
}

/// Removes a folder and everything in it, counting the files and their bytes.
fn remove_tree(path: &std::path::Path, removed: &mut RemovedFiles) -> io::Result<()> {
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            remove_tree(&entry.path(), removed)?;
        } else {
            removed.bytes += entry.metadata()?.len();
            removed.files += 1;
            fs::remove_file(entry.path())?;
        }
    }
    fs::remove_dir(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_file_is_visible_only_once_committed_and_keys_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let files = LocalFiles::new(dir.path());
        let mut file = files.create("exports/t/1.csv").unwrap();
        file.write_all(b"half").unwrap();
        assert!(files.open("exports/t/1.csv").unwrap().is_none(), "unfinished files are not served");
        let mut again = files.create("exports/t/1.csv").unwrap();
        again.write_all(b"whole").unwrap();
        files.commit("exports/t/1.csv").unwrap();
        let (_, length) = files.open("exports/t/1.csv").unwrap().unwrap();
        assert_eq!(length, 5, "a new attempt replaces the unfinished file");
        for bad in ["../x", "exports/../../x", "/etc/passwd", "a//b", "", "a b"] {
            assert!(files.create(bad).is_err(), "{bad:?}");
        }
        files.remove("exports/t/1.csv").unwrap();
        assert!(files.open("exports/t/1.csv").unwrap().is_none());
    }

    #[test]
    fn a_tenants_files_go_from_every_area_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let files = LocalFiles::new(dir.path());
        for key in ["exports/t1/a.csv", "archives/t1/r.zip", "subject-requests/t1/x/y.zip", "exports/t2/b.csv"] {
            files.create(key).unwrap().write_all(b"1234").unwrap();
            files.commit(key).unwrap();
        }
        files.create("exports/t1/half.csv").unwrap().write_all(b"12").unwrap();
        let removed = files.remove_tenant("t1").unwrap();
        assert_eq!(removed, RemovedFiles { files: 4, bytes: 14 }, "unfinished files go too");
        assert!(!dir.path().join("exports/t1").exists());
        assert!(!dir.path().join("archives/t1").exists());
        assert!(files.open("exports/t2/b.csv").unwrap().is_some());
        assert!(files.remove_tenant("../t2").is_err(), "a tenant is one path segment");
        assert_eq!(files.remove_tenant("t1").unwrap(), RemovedFiles::default());
    }
}
