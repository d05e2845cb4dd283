//! API keys: bearer tokens stored as SHA-256 hashes, each with a role.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, audit};
use crate::domain::{AuditAction, RequestContext};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// EventIngest only.
    Ingest,
    /// Read-only WebhookAdmin RPCs and WatchDeliveries.
    Viewer,
}

impl Role {
    /// Name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(Role::Admin),
            "ingest" => Some(Role::Ingest),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// An API key as listed (never the token).
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The token's first characters.
    pub token_prefix: String,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Revoked, if so.
    pub revoked_at: Option<OffsetDateTime>,
}

/// SHA-256 of a token: how tokens are stored and looked up.
pub fn token_hash(token: &str) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&Sha256::digest(token.as_bytes()));
    hash
}

impl Store {
    /// Creates a key; returns it and the token, which is shown only now.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        context: &RequestContext,
    ) -> Result<(ApiKeyRecord, String), StoreError> {
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let token = format!("whk_{}", URL_SAFE_NO_PAD.encode(random));
        let prefix: String = token.chars().take(10).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "INSERT INTO api_keys (id, name, role, token_hash, token_prefix) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id, name, role, token_prefix, created_at, revoked_at",
                &[&Uuid::now_v7(), &name, &role.as_str(), &token_hash(&token).to_vec(), &prefix],
            )
            .await?;
        let key = key_from_row(&row)?;
        let diff = serde_json::json!({
            "name": { "after": key.name },
            "role": { "after": key.role.as_str() },
        });
        audit::append(
            &tx,
            &context.audit(AuditAction::ApiKeyCreated, "api_key", key.id, diff),
        )
        .await?;
        tx.commit().await?;
        Ok((key, token))
    }

    /// Every key, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, name, role, token_prefix, created_at, revoked_at FROM api_keys ORDER BY created_at",
                &[],
            )
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key; false when unknown or already revoked.
    pub async fn revoke_api_key(
        &self,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL \
                 RETURNING name, role",
                &[&id],
            )
            .await?
        else {
            return Ok(false);
        };
        let diff = serde_json::json!({
            "name": row.try_get::<_, String>(0)?,
            "role": row.try_get::<_, String>(1)?,
            "revoked": { "before": false, "after": true },
        });
        audit::append(
            &tx,
            &context.audit(AuditAction::ApiKeyRevoked, "api_key", id, diff),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The role and name of an unrevoked key with this token hash.
    pub async fn api_key_role(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(Role, String)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT role, name FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .await?;
        let row = client.query_opt(&statement, &[&hash.to_vec()]).await?;
        Ok(match row {
            Some(row) => {
                let name: String = row.try_get(1)?;
                Role::parse(row.try_get::<_, &str>(0)?).map(|role| (role, name))
            }
            None => None,
        })
    }
}

fn key_from_row(row: &tokio_postgres::Row) -> Result<ApiKeyRecord, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
        token_prefix: row.try_get("token_prefix")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}
