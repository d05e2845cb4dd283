//! Request ids of the admin mutations (AIP-155): the first answer to each, stored in the same
//! transaction as the change it answers, so a retry gets that answer instead of a second change.
//! See `migrations/V9__api_details_request_ids_and_etags.sql`.
//!
//! A mutation runs in an [`AnswerOnce`] transaction. Two calls with the same key at once both
//! act, but the second one's insert of the answer waits for the first's commit and then finds
//! the key taken: its transaction, change included, rolls back, and it answers with the first
//! call's answer.

use deadpool_postgres::{GenericClient, Object, Transaction};
use time::OffsetDateTime;

use super::vault::Sealed;
use super::{Store, StoreError};

/// How long a request id keeps its answer (docs/grpc-api.md, "Retrying"): a retry later than
/// this acts again.
pub const REQUEST_ID_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Who asked what under which id: a row of `admin_requests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The RPC's name (ids are per RPC).
    pub rpc: &'static str,
    /// The caller (the SHA-256 of its token; empty when authentication is off).
    pub caller: Vec<u8>,
    /// The caller's request id.
    pub request_id: uuid::Uuid,
    /// SHA-256 of the request without its request id.
    pub request_hash: Vec<u8>,
}

/// What a request id was already used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The same request: its first answer, as encoded then.
    Answer(Vec<u8>),
    /// A different request under the same id.
    OtherRequest,
}

/// A pooled connection for [`AnswerOnce`] transactions.
pub struct Connection(Object);

/// A transaction whose commit records the answer under the request's key (when it has one).
pub struct AnswerOnce<'c> {
    tx: Transaction<'c>,
    key: Option<&'c RequestKey>,
}

impl Store {
    /// A connection from the pool, to run an [`AnswerOnce`] transaction on.
    pub async fn connection(&self) -> Result<Connection, StoreError> {
        Ok(Connection(self.client().await?))
    }

    /// What `key`'s request id was used for before, if anything.
    pub async fn replay(&self, key: &RequestKey) -> Result<Option<Replay>, StoreError> {
        replay(&self.client().await?, self, key).await
    }

    /// Deletes the request ids older than `cutoff`; returns how many.
    pub async fn purge_request_ids(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM admin_requests WHERE created_at < $1",
                &[&cutoff],
            )
            .await?)
    }
}

impl Connection {
    /// Begins the transaction of a mutation answered once per `key` (none: an ordinary one).
    pub async fn answer_once<'c>(
        &'c mut self,
        key: Option<&'c RequestKey>,
    ) -> Result<AnswerOnce<'c>, StoreError> {
        Ok(AnswerOnce {
            tx: self.0.transaction().await?,
            key,
        })
    }
}

impl AnswerOnce<'_> {
    /// The transaction the change is made in.
    pub fn client(&self) -> &Transaction<'_> {
        &self.tx
    }

    /// Stores `answer` (sealed: it may carry a secret shown once) under the key and commits.
    /// `Some` when another call with the key committed first: this one's change is rolled back
    /// and that call's use of the id is returned instead.
    pub async fn commit(
        self,
        store: &Store,
        answer: impl FnOnce() -> Vec<u8>,
    ) -> Result<Option<Replay>, StoreError> {
        if let Some(key) = self.key {
            let sealed = store.vault().seal_bytes(Sealed::Answer, &answer())?;
            let inserted = self
                .tx
                .execute(
                    "INSERT INTO admin_requests (rpc, caller, request_id, request_hash, response) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[
                        &key.rpc,
                        &key.caller,
                        &key.request_id,
                        &key.request_hash,
                        &sealed,
                    ],
                )
                .await?;
            if inserted == 0 {
                // Dropping the transaction rolls the change back; the winner has committed.
                let replayed = replay(&self.tx, store, key).await?;
                return Ok(Some(replayed.ok_or_else(|| {
                    StoreError::Corrupt("a request id vanished while in use".into())
                })?));
            }
        }
        self.tx.commit().await?;
        // The change may have made work: wake this instance's sequencer and worker now that it
        // is visible (the NOTIFY for the others went out with the commit).
        store.appended_updates();
        store.wakeups().deliveries.wake();
        Ok(None)
    }
}

async fn replay(
    client: &impl GenericClient,
    store: &Store,
    key: &RequestKey,
) -> Result<Option<Replay>, StoreError> {
    let row = client
        .query_opt(
            "SELECT request_hash, response FROM admin_requests \
             WHERE rpc = $1 AND caller = $2 AND request_id = $3",
            &[&key.rpc, &key.caller, &key.request_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let hash: Vec<u8> = row.try_get("request_hash")?;
    if hash != key.request_hash {
        return Ok(Some(Replay::OtherRequest));
    }
    let sealed: Vec<u8> = row.try_get("response")?;
    Ok(Some(Replay::Answer(
        store.vault().open_bytes(Sealed::Answer, &sealed)?,
    )))
}
