//! `request_id` (AIP-155) of CreateWebhook, RotateWebhookSecret, ResendDelivery,
//! RecoverFailedDeliveries and SendTestEvent: a retry with the same id by the same caller gets
//! the first answer instead of a second change. The answers are stored by
//! `crate::store::AnswerOnce`, in the transaction of the change.

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::api::auth::Caller;
use crate::api::convert::errors::invalid_field;
use crate::api::convert::{Reason, internal};
use crate::domain::ValidationError;
use crate::store::{AnswerOnce, Replay, RequestKey, Store};

/// The key of `request` to the RPC `rpc` under its request id (the field `field` selects;
/// `Ok(None)` when empty), or `Err` with the first answer when the id was used before for the
/// same request. A request id must be a UUID.
pub(super) async fn key_or_answer<M: Message + Clone, R: Message + Default>(
    store: &Store,
    rpc: &'static str,
    request: &Request<M>,
    field: fn(&mut M) -> &mut String,
) -> Result<Result<Option<RequestKey>, R>, Status> {
    // The hash covers everything but the request id itself.
    let mut rest = request.get_ref().clone();
    let request_id = std::mem::take(field(&mut rest));
    if request_id.is_empty() {
        return Ok(Ok(None));
    }
    let id = uuid::Uuid::try_parse(&request_id).map_err(|_| {
        crate::api::invalid_argument(ValidationError::new(
            "request_id",
            "must be a UUID (AIP-155), e.g. 3f0c1a52-6b1e-4d2a-9a47-0c8d1e5f7b21, or empty",
        ))
    })?;
    let caller = match request.extensions().get::<Caller>() {
        Some(Caller::Token(hash)) => hash.to_vec(),
        Some(Caller::Anonymous) | None => Vec::new(),
    };
    let key = RequestKey {
        rpc,
        caller,
        request_id: id,
        request_hash: Sha256::digest(rest.encode_to_vec()).to_vec(),
    };
    match store.replay(&key).await? {
        None => Ok(Ok(Some(key))),
        Some(replay) => answer(&key, replay).map(Err),
    }
}

/// Commits `tx` with `answer` stored under its key. If another call with the key committed
/// first, this one's change is undone and that call's answer returned.
pub(super) async fn commit<R: Message + Default>(
    tx: AnswerOnce<'_>,
    key: Option<&RequestKey>,
    store: &Store,
    answer: R,
) -> Result<R, Status> {
    match (tx.commit(store, || answer.encode_to_vec()).await?, key) {
        (None, _) => Ok(answer),
        (Some(replay), Some(key)) => self::answer(key, replay),
        (Some(_), None) => Err(internal()),
    }
}

fn answer<R: Message + Default>(key: &RequestKey, replay: Replay) -> Result<R, Status> {
    match replay {
        Replay::Answer(bytes) => R::decode(bytes.as_slice()).map_err(|e| {
            tracing::error!(rpc = key.rpc, error = %e, "a stored answer does not decode");
            internal()
        }),
        Replay::OtherRequest => Err(invalid_field(
            Reason::RequestIdReused,
            ValidationError::new(
                "request_id",
                format!(
                    "was already used for a different {} request; use a new id per request",
                    key.rpc
                ),
            ),
        )),
    }
}
