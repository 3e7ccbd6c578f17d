//! The typed face of the store: entities in, entities out, through [`Record`].

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_domain::{Event, Lead, Organization, Session, Timestamp, VisitorProfile};
use uuid::Uuid;

use crate::codec::{self, contact_key, email_key, phone_key};
use crate::doc::{DocKind, DocRow, ListQuery, Value};
use crate::{Store, StoreResult, TenantCtx};

/// An entity the store keeps as a document.
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: DocKind;
    fn key(&self) -> Uuid;
    fn created_at(&self) -> Timestamp;
    fn updated_at(&self) -> Timestamp;
    /// Values of `KIND.columns()`, in order.
    fn projection(&self) -> Vec<Value>;

    fn to_row(&self) -> StoreResult<DocRow> {
        Ok(DocRow {
            id: self.key(),
            created_at: self.created_at(),
            updated_at: self.updated_at(),
            columns: self.projection(),
            body: codec::encode(self)?,
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
    fn projection(&self) -> Vec<Value> {
        vec![
            self.visitor_profile_id.map(|id| id.into_uuid()).into(),
            self.organization_id.map(|id| id.into_uuid()).into(),
            self.status.as_str().into(),
            self.email.as_ref().map(email_key).into(),
            self.phone.as_ref().map(phone_key).into(),
            self.contact_id.as_deref().map(contact_key).into(),
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
    fn projection(&self) -> Vec<Value> {
        vec![self.domain.as_ref().map(|d| d.as_str()).into()]
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
    fn projection(&self) -> Vec<Value> {
        vec![
            self.organization_id.map(|id| id.into_uuid()).into(),
            self.contact_id.as_deref().map(contact_key).into(),
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
    fn projection(&self) -> Vec<Value> {
        vec![self.visitor_profile_id.into_uuid().into()]
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
    fn projection(&self) -> Vec<Value> {
        vec![
            self.session_id.into_uuid().into(),
            self.visitor_profile_id.into_uuid().into(),
            i64::from(self.position).into(),
        ]
    }
}

/// Typed methods over any [`Store`].
#[async_trait]
pub trait StoreExt: Store {
    async fn insert<R: Record>(&self, ctx: &TenantCtx, records: &[R]) -> StoreResult<()> {
        let rows = records
            .iter()
            .map(Record::to_row)
            .collect::<StoreResult<Vec<_>>>()?;
        self.insert_docs(ctx, R::KIND, &rows).await
    }

    async fn get<R: Record>(&self, ctx: &TenantCtx, id: Uuid) -> StoreResult<Option<R>> {
        match self.get_doc(ctx, R::KIND, id).await? {
            Some(row) => codec::decode(&row.body).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the stored record with the same id; false when there is none for this tenant.
    async fn update<R: Record>(&self, ctx: &TenantCtx, record: &R) -> StoreResult<bool> {
        self.update_doc(ctx, R::KIND, &record.to_row()?).await
    }

    async fn delete<R: Record>(&self, ctx: &TenantCtx, id: Uuid) -> StoreResult<bool> {
        self.delete_doc(ctx, R::KIND, id).await
    }

    async fn list<R: Record>(&self, ctx: &TenantCtx, query: &ListQuery) -> StoreResult<Vec<R>> {
        let rows = self.list_docs(ctx, R::KIND, query).await?;
        rows.iter().map(|row| codec::decode(&row.body)).collect()
    }

    async fn count<R: Record>(&self, ctx: &TenantCtx) -> StoreResult<u64> {
        self.count_docs(ctx, R::KIND).await
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
