//! PLACEHOLDER: replaced at merge by the real tenant archive.
//!
//! The same signature as the real one, so switching builds and tests against it: a ZIP holding a
//! README, committed to the file store under `key`.

use std::io::Read;

use sha2::{Digest, Sha256};
use steward_export::archive::Archive;
use steward_store::TenantCtx;

use crate::state::AppState;

/// What [`build`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    pub bytes: u64,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    pub files: Vec<ArchiveMember>,
}

/// One member of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMember {
    pub path: String,
    /// Records in it, for a dataset.
    pub rows: Option<u64>,
    pub sha256: String,
}

/// Writes the tenant's archive to the file store under `key`, replacing an earlier one.
pub async fn build(state: &AppState, ctx: &TenantCtx, key: &str) -> anyhow::Result<ArchiveSummary> {
    let readme = format!("Archive of tenant {}.\n", ctx.tenant_id());
    let file = state.files.create(key)?;
    let mut archive = Archive::new(file);
    archive.add("README.txt", readme.as_bytes())?;
    archive.finish()?.sync_all()?;
    state.files.commit(key)?;
    let (mut file, bytes) =
        state.files.open(key)?.ok_or_else(|| anyhow::anyhow!("the archive {key} vanished after it was written"))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    let sha256 = hex(&hasher.finalize());
    let member = ArchiveMember { path: "README.txt".into(), rows: None, sha256: hex(&Sha256::digest(readme)) };
    Ok(ArchiveSummary { bytes, sha256, files: vec![member] })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
