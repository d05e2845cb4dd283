//! WebhookAdmin's delivery RPCs: history (list, get), resend, recover and test events.

use tonic::{Code, Request, Response, Status};

use super::request_ids;
use super::{AdminService, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, bad};
use crate::api::auth::context;
use crate::api::convert::{self, Reason, internal, timestamps};
use crate::api::not_found;
use crate::domain::{
    AttemptTrigger, DeliveryId, PageFilters, PageToken, PublishedEvent, ValidationError, WebhookId,
    page_size,
};
use crate::proto::v1 as pb;
use crate::store::DeliveryFilter;

pub(super) async fn list_deliveries(
    service: &AdminService,
    request: Request<pb::ListDeliveriesRequest>,
) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
    let request = request.into_inner();
    let limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let webhook_id = match request.webhook_id.as_str() {
        "" => None,
        id => Some(WebhookId::parse("webhook_id", id)?),
    };
    let statuses = convert::statuses(&request.statuses)?;
    let optional = |field: &str, value: String| -> Result<Option<String>, Status> {
        crate::domain::check_max_chars(field, &value, 200)?;
        Ok((!value.is_empty()).then_some(value))
    };
    let filter = DeliveryFilter {
        webhook_id,
        statuses,
        event_type: optional("event_type", request.event_type)?,
        request_id: optional("request_id", request.request_id)?,
        created_after: request
            .created_after
            .as_ref()
            .map(|t| timestamps::from_proto("created_after", t))
            .transpose()?,
        created_before: request
            .created_before
            .as_ref()
            .map(|t| timestamps::from_proto("created_before", t))
            .transpose()?,
    };
    let filters = PageFilters::new("ListDeliveries")
        .optional("webhook_id", filter.webhook_id)
        .set("statuses", filter.statuses.iter().map(|s| s.as_str()))
        .optional("event_type", filter.event_type.as_deref())
        .optional("request_id", filter.request_id.as_deref())
        .optional(
            "created_after",
            filter.created_after.map(|t| t.unix_timestamp_nanos()),
        )
        .optional(
            "created_before",
            filter.created_before.map(|t| t.unix_timestamp_nanos()),
        );
    let before = PageToken::parse(&request.page_token, &filters, &service.page_tokens)?;
    let (records, next) = service
        .store
        .list_deliveries(&filter, before, limit)
        .await?;
    Ok(Response::new(pb::ListDeliveriesResponse {
        deliveries: records.iter().map(|r| convert::delivery(r, &[])).collect(),
        next_page_token: next
            .map(|t| t.encode(&filters, &service.page_tokens))
            .unwrap_or_default(),
    }))
}

pub(super) async fn get_delivery(
    service: &AdminService,
    request: Request<pb::GetDeliveryRequest>,
) -> Result<Response<pb::Delivery>, Status> {
    let id = DeliveryId::parse("id", &request.get_ref().id)?;
    match service.store.get_delivery(id).await? {
        Some((delivery, attempts)) => Ok(Response::new(convert::delivery(&delivery, &attempts))),
        None => Err(not_found("delivery", id)),
    }
}

pub(super) async fn resend_delivery(
    service: &AdminService,
    request: Request<pb::ResendDeliveryRequest>,
) -> Result<Response<pb::Delivery>, Status> {
    let id = DeliveryId::parse("id", &request.get_ref().id)?;
    let key = match request_ids::key_or_answer(&service.store, "ResendDelivery", &request, |r| {
        &mut r.request_id
    })
    .await?
    {
        Ok(key) => key,
        Err(answer) => return Ok(Response::new(answer)),
    };
    let Some((delivery, _)) = service.store.get_delivery(id).await? else {
        return Err(not_found("delivery", id));
    };
    require_sendable(service, delivery.webhook_id).await?;
    let mut connection = service.store.connection().await?;
    let tx = connection.answer_once(key.as_ref()).await?;
    let record = service
        .store
        .requeue_delivery_in(
            tx.client(),
            id,
            AttemptTrigger::Resend,
            &context(&request).with_request_id(&request.get_ref().request_id),
        )
        .await?
        .ok_or_else(|| not_found("delivery", id))?;
    let answer = convert::delivery(&record, &[]);
    let answer = request_ids::commit(tx, key.as_ref(), &service.store, answer).await?;
    tracing::info!(delivery_id = %id, webhook_id = %record.webhook_id, "delivery resent");
    Ok(Response::new(answer))
}

pub(super) async fn recover_failed_deliveries(
    service: &AdminService,
    request: Request<pb::RecoverFailedDeliveriesRequest>,
) -> Result<Response<pb::RecoverFailedDeliveriesResponse>, Status> {
    let context = context(&request).with_request_id(&request.get_ref().request_id);
    let key =
        match request_ids::key_or_answer(&service.store, "RecoverFailedDeliveries", &request, |r| {
            &mut r.request_id
        })
        .await?
        {
            Ok(key) => key,
            Err(answer) => return Ok(Response::new(answer)),
        };
    let request = request.into_inner();
    let webhook_id = WebhookId::parse("webhook_id", &request.webhook_id)?;
    let Some(since) = request.since.as_ref() else {
        return Err(bad(ValidationError::new("since", "is required")));
    };
    let since = timestamps::from_proto("since", since)?;
    require_sendable(service, webhook_id).await?;
    let mut connection = service.store.connection().await?;
    let tx = connection.answer_once(key.as_ref()).await?;
    let recovered = service
        .store
        .recover_failed_in(tx.client(), webhook_id, since, &context)
        .await?;
    let answer = pb::RecoverFailedDeliveriesResponse {
        recovered: u32::try_from(recovered).unwrap_or(u32::MAX),
    };
    let answer = request_ids::commit(tx, key.as_ref(), &service.store, answer).await?;
    tracing::info!(webhook_id = %webhook_id, recovered, "failed deliveries recovered");
    Ok(Response::new(answer))
}

pub(super) async fn send_test_event(
    service: &AdminService,
    request: Request<pb::SendTestEventRequest>,
) -> Result<Response<pb::Delivery>, Status> {
    let webhook_id = WebhookId::parse("webhook_id", &request.get_ref().webhook_id)?;
    let key = match request_ids::key_or_answer(&service.store, "SendTestEvent", &request, |r| {
        &mut r.request_id
    })
    .await?
    {
        Ok(key) => key,
        Err(answer) => return Ok(Response::new(answer)),
    };
    let webhook = require_sendable(service, webhook_id).await?;
    let event = PublishedEvent::test_ping(webhook_id, webhook.function);
    let mut connection = service.store.connection().await?;
    let tx = connection.answer_once(key.as_ref()).await?;
    let delivery_id = service
        .store
        .enqueue_test_event_in(
            tx.client(),
            webhook_id,
            &event,
            &context(&request).with_request_id(&request.get_ref().request_id),
        )
        .await?;
    let Some((delivery, attempts)) = service
        .store
        .get_delivery_in(tx.client(), delivery_id)
        .await?
    else {
        tracing::error!(%delivery_id, "a test delivery is not there in its own transaction");
        return Err(internal());
    };
    let answer = convert::delivery(&delivery, &attempts);
    let answer = request_ids::commit(tx, key.as_ref(), &service.store, answer).await?;
    Ok(Response::new(answer))
}

/// The webhook, if it exists and is enabled: sending to a deleted or disabled webhook would
/// leave the delivery waiting, which is not what an admin clicking "Resend" expects.
async fn require_sendable(
    service: &AdminService,
    webhook_id: WebhookId,
) -> Result<crate::store::WebhookRecord, Status> {
    let not_sendable = |message: String| {
        convert::error(
            Code::FailedPrecondition,
            Reason::WebhookNotSendable,
            message,
            &[("webhook_id", webhook_id.to_string())],
        )
    };
    let webhook = service
        .store
        .get_webhook(webhook_id)
        .await?
        .ok_or_else(|| {
            not_sendable(format!(
                "webhook {webhook_id} was deleted or does not exist"
            ))
        })?;
    if !webhook.enabled {
        return Err(not_sendable(format!(
            "webhook {webhook_id} is disabled; enable it with SetWebhookEnabled first"
        )));
    }
    Ok(webhook)
}
