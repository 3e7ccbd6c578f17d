//! The typed face of the store: entities in, entities out, through [`Record`].

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_domain::subject::{LedgerEntry, LegalHold, SubjectRequest};
use steward_domain::switching::SwitchingRequest;
use steward_domain::{Event, Lead, Organization, Session, Timestamp, VisitorProfile};
use uuid::Uuid;

use crate::audit::{self, AuditDraft, AuditEntry, AuditQuery, Verification};
use crate::codec;
use crate::doc::{Doc, DocKind, DocRow, DocWrite, ListQuery, Projection, TallyQuery, TallyRow, Value, WriteOp};
use crate::vault::TenantKeys;
use crate::{Store, StoreError, StoreResult, TenantCtx};

/// An entity the store keeps as a document.
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: DocKind;
    fn key(&self) -> Uuid;
    fn created_at(&self) -> Timestamp;
    fn updated_at(&self) -> Timestamp;
    /// Values of `KIND.columns()`, in order; lookup columns hold keyed hashes.
    fn projection(&self, keys: &TenantKeys) -> Vec<Value>;

    fn to_row(&self, ctx: &TenantCtx, keys: &TenantKeys) -> StoreResult<DocRow> {
        let id = self.key();
        Ok(DocRow {
            id,
            created_at: self.created_at(),
            updated_at: self.updated_at(),
            columns: self.projection(keys),
            body: codec::encode(self, keys, &codec::context(ctx, Self::KIND, &id))?,
        })
    }
}

impl Record for Lead {
    const KIND: DocKind = DocKind::Lead;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.created_at
    }
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    fn projection(&self, keys: &TenantKeys) -> Vec<Value> {
        vec![
            self.visitor_profile_id.map(|id| id.into_uuid()).into(),
            self.organization_id.map(|id| id.into_uuid()).into(),
            self.status.as_str().into(),
            self.email.as_ref().map(|email| Lookup::Email.key(keys, &email.lookup_key())).into(),
            self.phone.as_ref().map(|phone| Lookup::Phone.key(keys, phone.as_str())).into(),
            self.contact_id.as_deref().map(|id| Lookup::ContactId.key(keys, id)).into(),
            Value::Int(i64::from(self.restricted_at.is_some())),
            steward_domain::report::lead_referrer_type(self).into(),
        ]
    }
}

impl Record for Organization {
    const KIND: DocKind = DocKind::Organization;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.created_at
    }
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    fn projection(&self, keys: &TenantKeys) -> Vec<Value> {
        vec![self.domain.as_ref().map(|d| d.as_str()).into(), Value::Text(contact_keys(self, keys))]
    }
}

impl Record for VisitorProfile {
    const KIND: DocKind = DocKind::VisitorProfile;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.first_seen_at
    }
    fn updated_at(&self) -> Timestamp {
        self.last_seen_at
    }
    fn projection(&self, keys: &TenantKeys) -> Vec<Value> {
        vec![
            self.organization_id.map(|id| id.into_uuid()).into(),
            self.contact_id.as_deref().map(|id| Lookup::ContactId.key(keys, id)).into(),
            Value::Int(i64::from(self.restricted_at.is_some())),
        ]
    }
}

impl Record for Session {
    const KIND: DocKind = DocKind::Session;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.started_at
    }
    fn updated_at(&self) -> Timestamp {
        self.ended_at
    }
    fn projection(&self, _keys: &TenantKeys) -> Vec<Value> {
        vec![self.visitor_profile_id.into_uuid().into(), Value::Int(i64::from(self.converted))]
    }
}

impl Record for Event {
    const KIND: DocKind = DocKind::Event;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.occurred_at
    }
    fn updated_at(&self) -> Timestamp {
        self.occurred_at
    }
    fn projection(&self, _keys: &TenantKeys) -> Vec<Value> {
        vec![
            self.session_id.into_uuid().into(),
            self.visitor_profile_id.into_uuid().into(),
            i64::from(self.position).into(),
        ]
    }
}

impl Record for SubjectRequest {
    const KIND: DocKind = DocKind::SubjectRequest;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.created_at
    }
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    fn projection(&self, _keys: &TenantKeys) -> Vec<Value> {
        let key = |hex: &Option<String>| Value::from(hex.as_deref().and_then(from_hex));
        vec![
            self.status.as_str().into(),
            key(&self.subject_keys.email),
            key(&self.subject_keys.phone),
            key(&self.subject_keys.contact_id),
            key(&self.subject_keys.visitor_id),
        ]
    }
}

impl Record for LegalHold {
    const KIND: DocKind = DocKind::LegalHold;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.created_at
    }
    fn updated_at(&self) -> Timestamp {
        self.created_at
    }
    fn projection(&self, _keys: &TenantKeys) -> Vec<Value> {
        vec![self.record_id.into()]
    }
}

impl Record for LedgerEntry {
    const KIND: DocKind = DocKind::ErasureEntry;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.created_at
    }
    fn updated_at(&self) -> Timestamp {
        self.created_at
    }
    fn projection(&self, _keys: &TenantKeys) -> Vec<Value> {
        vec![from_hex(&self.key).into()]
    }
}

impl Record for SwitchingRequest {
    const KIND: DocKind = DocKind::SwitchingRequest;
    fn key(&self) -> Uuid {
        self.id.into_uuid()
    }
    fn created_at(&self) -> Timestamp {
        self.created_at
    }
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    fn projection(&self, _keys: &TenantKeys) -> Vec<Value> {
        vec![self.status.as_str().into()]
    }
}

/// Lowercase hex of bytes: how keyed hashes travel inside bodies.
pub fn to_hex(bytes: &[u8]) -> String {
    audit::hex(bytes)
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Every person an organization names, as space-separated hex keyed hashes: its contact
/// entries' lead ids and emails, and its own email and phone (a sole trader's are a person's).
/// Data-subject requests, erasure and retention find the organizations holding a copy of a
/// person through this column ([`ListQuery::any_word`]), never through clear values.
pub fn contact_keys(organization: &Organization, keys: &TenantKeys) -> String {
    let mut words: Vec<String> = Vec::new();
    for contact in &organization.contacts {
        words.push(to_hex(&Lookup::LeadId.key(keys, &contact.lead_id.to_string())));
        if let Some(email) = &contact.email {
            words.push(to_hex(&Lookup::Email.key(keys, &email.lookup_key())));
        }
    }
    if let Some(email) = &organization.email {
        words.push(to_hex(&Lookup::Email.key(keys, &email.lookup_key())));
    }
    if let Some(phone) = &organization.phone {
        words.push(to_hex(&Lookup::Phone.key(keys, phone.as_str())));
    }
    words.sort_unstable();
    words.dedup();
    words.join(" ")
}

/// The values with an exact-match lookup column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Email,
    Phone,
    ContactId,
    /// A visitor id (its hyphenated form): only in the erasure ledger and request keys.
    VisitorId,
    /// A lead id (hyphenated): only inside organizations' `contact_keys`.
    LeadId,
}

impl Lookup {
    pub fn column(&self) -> &'static str {
        match self {
            Self::Email => "email_key",
            Self::Phone => "phone_key",
            Self::ContactId => "contact_key",
            Self::VisitorId => "visitor_key",
            Self::LeadId => "lead_key",
        }
    }

    /// The keyed hash of an already normalised value (an email's `lookup_key`, an E.164 phone).
    pub fn key(&self, keys: &TenantKeys, normalised: &str) -> Vec<u8> {
        keys.lookup_key(self.column(), normalised)
    }
}

/// Changes to records of any kinds and tenants, written together by [`Store::write_docs`].
#[derive(Debug, Default)]
pub struct Batch {
    writes: Vec<DocWrite>,
}

impl Batch {
    pub fn insert<R: Record>(&mut self, ctx: &TenantCtx, keys: &TenantKeys, record: &R) -> StoreResult<()> {
        let row = record.to_row(ctx, keys)?;
        self.writes.push(DocWrite { ctx: *ctx, kind: R::KIND, op: WriteOp::Insert(row) });
        Ok(())
    }

    /// Replaces a stored record; the batch fails if it no longer exists.
    pub fn update<R: Record>(&mut self, ctx: &TenantCtx, keys: &TenantKeys, record: &R) -> StoreResult<()> {
        let row = record.to_row(ctx, keys)?;
        self.writes.push(DocWrite { ctx: *ctx, kind: R::KIND, op: WriteOp::Update(row) });
        Ok(())
    }

    /// Removes a stored record; the batch fails if it no longer exists.
    pub fn delete(&mut self, ctx: &TenantCtx, kind: DocKind, id: Uuid) {
        self.writes.push(DocWrite { ctx: *ctx, kind, op: WriteOp::Delete(id) });
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Adds another batch's writes after these.
    pub fn append(&mut self, other: Batch) {
        self.writes.extend(other.writes);
    }

    pub fn writes(&self) -> &[DocWrite] {
        &self.writes
    }
}

/// Typed methods over any [`Store`].
#[async_trait]
pub trait StoreExt: Store {
    /// The tenant's keys (created on first use).
    fn keys(&self, ctx: &TenantCtx) -> StoreResult<std::sync::Arc<TenantKeys>> {
        Ok(self.vault().keys(ctx.tenant_id())?)
    }

    /// The lookup-column filter that finds `normalised` exactly.
    fn lookup(&self, ctx: &TenantCtx, lookup: Lookup, normalised: &str) -> StoreResult<(&'static str, Value)> {
        let keys = self.keys(ctx)?;
        Ok((lookup.column(), Value::Bytes(lookup.key(&keys, normalised))))
    }

    async fn insert<R: Record>(&self, ctx: &TenantCtx, records: &[R]) -> StoreResult<()> {
        let keys = self.keys(ctx)?;
        let rows = records.iter().map(|record| record.to_row(ctx, &keys)).collect::<StoreResult<Vec<_>>>()?;
        self.insert_docs(ctx, R::KIND, &rows).await
    }

    /// Stores new records and the audit entry recording them in one transaction.
    async fn insert_audited<R: Record>(&self, ctx: &TenantCtx, records: &[R], draft: &AuditDraft) -> StoreResult<()> {
        let keys = self.keys(ctx)?;
        let mut batch = Batch::default();
        for record in records {
            batch.insert(ctx, &keys, record)?;
        }
        self.write_docs_audited(batch.writes(), ctx, std::slice::from_ref(draft)).await.map(|_| ())
    }

    /// Replaces a stored record and appends the audit entries recording the change, in one
    /// transaction; false, and no entry, when the record is no longer stored.
    async fn update_audited<R: Record>(&self, ctx: &TenantCtx, record: &R, drafts: &[AuditDraft]) -> StoreResult<bool> {
        let keys = self.keys(ctx)?;
        let mut batch = Batch::default();
        batch.update(ctx, &keys, record)?;
        match self.write_docs_audited(batch.writes(), ctx, drafts).await {
            Ok(_) => Ok(true),
            Err(StoreError::MissingReference { field: "id" }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn get<R: Record>(&self, ctx: &TenantCtx, id: Uuid) -> StoreResult<Option<R>> {
        match self.get_doc(ctx, R::KIND, id).await? {
            Some(doc) => decode_doc(ctx, &*self.keys(ctx)?, R::KIND, &doc).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the stored record with the same id; false when there is none for this tenant.
    async fn update<R: Record>(&self, ctx: &TenantCtx, record: &R) -> StoreResult<bool> {
        let keys = self.keys(ctx)?;
        self.update_doc(ctx, R::KIND, &record.to_row(ctx, &keys)?).await
    }

    async fn delete<R: Record>(&self, ctx: &TenantCtx, id: Uuid) -> StoreResult<bool> {
        self.delete_doc(ctx, R::KIND, id).await
    }

    async fn list<R: Record>(&self, ctx: &TenantCtx, query: &ListQuery) -> StoreResult<Vec<R>> {
        let docs = self.list_docs(ctx, R::KIND, query).await?;
        let keys = self.keys(ctx)?;
        docs.iter().map(|doc| decode_doc(ctx, &keys, R::KIND, doc)).collect()
    }

    /// Every record of `R` matching `query` (its cursor and limit aside), page by page.
    async fn list_all<R: Record>(&self, ctx: &TenantCtx, query: ListQuery) -> StoreResult<Vec<R>> {
        let mut query = ListQuery { limit: crate::doc::MAX_PAGE, after: None, ..query };
        let mut found = Vec::new();
        loop {
            let page: Vec<R> = self.list(ctx, &query).await?;
            let full = page.len() == crate::doc::MAX_PAGE as usize;
            query.after = page.last().map(Record::key);
            found.extend(page);
            if !full {
                return Ok(found);
            }
        }
    }

    /// [`Store::tally_docs`] over records of `R`, once every row in the query's window holds
    /// the projected columns `needs`: rows stored before a column existed (or written by an
    /// older node) are opened once here and their columns saved, so the tally never counts a
    /// missing value as zero.
    async fn tally<R: Record>(
        &self,
        ctx: &TenantCtx,
        query: &TallyQuery,
        needs: &[&'static str],
    ) -> StoreResult<Vec<TallyRow>> {
        for column in needs {
            // Asked as a tally first: that reads the covering index alone, where a list of the
            // (normally no) rows would read the period's rows to test the column.
            let window = ListQuery { missing: Some(column), ..query.window.clone() };
            let check = TallyQuery { window, group: None, person: query.person, sum: None };
            if self.tally_docs(ctx, R::KIND, &check).await?.is_empty() {
                continue;
            }
            self.project_missing::<R>(ctx, column, &query.window).await?;
        }
        self.tally_docs(ctx, R::KIND, query).await
    }

    /// Opens the rows of `window` whose projected `column` is still NULL (stored before the
    /// column existed, or by a node that did not know it) and saves their projected columns.
    async fn project_missing<R: Record>(
        &self,
        ctx: &TenantCtx,
        column: &'static str,
        window: &ListQuery,
    ) -> StoreResult<()> {
        let mut missing =
            ListQuery { missing: Some(column), after: None, limit: crate::doc::MAX_PAGE, ..window.clone() };
        loop {
            let docs = self.list_docs(ctx, R::KIND, &missing).await?;
            let full = docs.len() == crate::doc::MAX_PAGE as usize;
            missing.after = docs.last().map(|doc| doc.id);
            if !docs.is_empty() {
                let keys = self.keys(ctx)?;
                let projections = docs
                    .into_iter()
                    .map(|doc| {
                        let record: R = decode_doc(ctx, &keys, R::KIND, &doc)?;
                        Ok(Projection { id: doc.id, columns: record.projection(&keys), body: doc.body })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                self.project_docs(ctx, R::KIND, &projections).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn count<R: Record>(&self, ctx: &TenantCtx) -> StoreResult<u64> {
        self.count_docs(ctx, R::KIND).await
    }

    /// Appends an entry to the tenant's audit log, chained to the newest one.
    async fn audit(&self, ctx: &TenantCtx, draft: &AuditDraft) -> StoreResult<AuditEntry> {
        let keys = self.keys(ctx)?;
        // Two appends at once both build entry n; the second insert fails on the taken
        // number and builds n + 1 on top of the first.
        for _ in 0..32 {
            let newest = self.list_audit(ctx, &AuditQuery::default(), true).await?;
            let row = audit::next_row(ctx, &keys, newest.first(), draft);
            match self.insert_audit(ctx, &row).await {
                Ok(()) => return audit::open_row(ctx, &keys, &row),
                Err(StoreError::Conflict { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Corrupt("the audit log stayed busy for 32 attempts; nothing was appended".into()))
    }

    /// A page of the tenant's audit log, bodies opened.
    async fn audit_entries(&self, ctx: &TenantCtx, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let keys = self.keys(ctx)?;
        let rows = self.list_audit(ctx, query, false).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let mut entry = audit::open_row_lenient(ctx, &keys, row);
                audit::reveal(self.vault(), ctx, &mut entry.detail);
                entry
            })
            .collect())
    }

    /// Walks the whole chain and names the first entry that is changed or missing.
    async fn verify_audit(&self, ctx: &TenantCtx) -> StoreResult<Verification> {
        let mut verifier = audit::Verifier::new();
        let keys = self.keys(ctx)?;
        let mut query = AuditQuery { limit: crate::doc::MAX_PAGE, ..AuditQuery::default() };
        loop {
            let rows = self.list_audit(ctx, &query, false).await?;
            for row in &rows {
                if let Some((seq, reason)) = verifier.check(ctx, &keys, row) {
                    return Ok(verifier.verdict(Some((seq, reason))));
                }
            }
            match rows.last() {
                Some(last) if rows.len() == crate::doc::MAX_PAGE as usize => query.after_seq = Some(last.seq),
                _ => return Ok(verifier.verdict(None)),
            }
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// Opens a stored body; the context binds it to its row.
pub fn decode_doc<R: Record>(ctx: &TenantCtx, keys: &TenantKeys, kind: DocKind, doc: &Doc) -> StoreResult<R> {
    codec::decode(&doc.body, keys, &codec::context(ctx, kind, &doc.id))
}

/// [`decode_doc`] that decrypts the body where it lies: for bulk reads done with each row once
/// it is opened (the body is left unreadable).
pub fn decode_doc_in_place<R: Record>(
    ctx: &TenantCtx,
    keys: &TenantKeys,
    kind: DocKind,
    doc: &mut Doc,
) -> StoreResult<R> {
    codec::decode_in_place(&mut doc.body, keys, &codec::context(ctx, kind, &doc.id))
}
