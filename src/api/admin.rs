//! `WebhookAdmin`: webhook configuration and delivery history.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{convert, invalid_argument, not_found};
use crate::delivery::DestinationGuard;
use crate::domain::{
    AttemptTrigger, Change, ClientCertificate, CustomHeaders, DeliveryId, Description,
    DestinationUrl, EventSelection, Function, PageFilters, PageToken, PageTokenKeys, PrivateCa,
    PublishedEvent, Secret, UpdateField, ValidationError, WebhookId, WebhookName, page_size,
    parse_update_mask, timestamps,
};
use crate::proto::v1 as pb;
use crate::proto::v1::webhook_admin_server::WebhookAdmin;
use crate::store::{DeliveryFilter, NewWebhook, Store, WebhookChanges, WebhookFilter};
use crate::stream::UpdateHub;

/// Default and maximum page sizes of the list RPCs.
const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 1000;
/// Default and maximum grace period of a secret rotation.
const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
const MAX_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The admin API.
#[derive(Clone)]
pub struct AdminService {
    store: Store,
    hub: Arc<UpdateHub>,
    destinations: DestinationGuard,
    /// Signs and checks the page tokens of ListWebhooks and ListDeliveries; shared by every
    /// instance, so a token pages on any of them.
    page_tokens: Arc<PageTokenKeys>,
}

impl AdminService {
    /// An admin API over `store`; `destinations` decides which destination URLs webhooks may
    /// have (the SSRF guard: private addresses, allowed networks, https), `page_tokens`
    /// authenticates page tokens.
    pub fn new(
        store: Store,
        hub: Arc<UpdateHub>,
        destinations: DestinationGuard,
        page_tokens: Arc<PageTokenKeys>,
    ) -> Self {
        Self {
            store,
            hub,
            destinations,
            page_tokens,
        }
    }

    fn parse_secret(field: &str, value: &str) -> Result<Secret, Status> {
        Secret::parse_or_generate(value)
            .map_err(|e| invalid_argument(ValidationError::new(field, e.to_string())))
    }
}

pub(super) fn bad(error: ValidationError) -> Status {
    invalid_argument(error)
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::DeliveryUpdate, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl WebhookAdmin for AdminService {
    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreateWebhookResponse>, Status> {
        let request = request.into_inner();
        let Some(webhook) = request.webhook else {
            return Err(bad(ValidationError::new("webhook", "is required")));
        };
        let new = NewWebhook {
            name: WebhookName::parse("webhook.name", &webhook.name)?,
            destination_url: DestinationUrl::parse(
                "webhook.destination_url",
                &webhook.destination_url,
                true,
            )?,
            function: convert::function("webhook.function", webhook.function)?,
            events: convert::event_selection("webhook.events", webhook.events.as_ref())?,
            description: Description::parse("webhook.description", &webhook.description)?,
            secret: Self::parse_secret("secret", &request.secret)?,
            deliver_once_per_request: webhook.deliver_once_per_request,
            headers: parse_headers(&webhook, None)?,
            client_certificate: parse_client_certificate(&webhook)?,
            server_ca: parse_server_ca(&webhook)?,
        };
        check_tls_needs_https(
            &new.destination_url,
            new.client_certificate.is_some(),
            new.server_ca.is_some(),
            false,
        )?;
        self.destinations
            .check_destination("webhook.destination_url", &new.destination_url)
            .await?;
        let record = self.store.create_webhook(&new).await?;
        tracing::info!(webhook_id = %record.id, function = record.function.as_str(), "webhook created");
        Ok(Response::new(pb::CreateWebhookResponse {
            webhook: Some(convert::webhook(&record)),
            secret: new.secret.to_whsec(),
        }))
    }

    async fn get_webhook(
        &self,
        request: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let id = WebhookId::parse("id", &request.get_ref().id)?;
        match self.store.get_webhook(id).await? {
            Some(record) => Ok(Response::new(convert::webhook(&record))),
            None => Err(not_found("webhook", id)),
        }
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let filter = WebhookFilter {
            function: convert::function_filter("function", request.function)?,
            enabled: request.enabled,
        };
        let filters = PageFilters::new("ListWebhooks")
            .optional("function", filter.function.map(Function::as_str))
            .optional("enabled", filter.enabled);
        let after = PageToken::parse(&request.page_token, &filters, &self.page_tokens)?;
        let (records, next) = self.store.list_webhooks(&filter, after, limit).await?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks: records.iter().map(convert::webhook).collect(),
            next_page_token: next
                .map(|t| t.encode(&filters, &self.page_tokens))
                .unwrap_or_default(),
        }))
    }

    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let request = request.into_inner();
        let Some(webhook) = request.webhook else {
            return Err(bad(ValidationError::new("webhook", "is required")));
        };
        let id = WebhookId::parse("webhook.id", &webhook.id)?;
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let fields = parse_update_mask(&paths)?;
        if fields.contains(&UpdateField::DestinationUrl) {
            // Checked here, before the transaction, since it may resolve the name.
            let destination =
                DestinationUrl::parse("webhook.destination_url", &webhook.destination_url, true)?;
            self.destinations
                .check_destination("webhook.destination_url", &destination)
                .await?;
        }
        let outcome = self
            .store
            .update_webhook(id, |current, headers| {
                merge_update(current, headers, &webhook, &fields)
            })
            .await?;
        match outcome {
            None => Err(not_found("webhook", id)),
            Some(Err(error)) => Err(bad(error)),
            Some(Ok(record)) => {
                tracing::info!(webhook_id = %id, fields = ?paths, "webhook updated");
                Ok(Response::new(convert::webhook(&record)))
            }
        }
    }

    async fn set_webhook_enabled(
        &self,
        request: Request<pb::SetWebhookEnabledRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let request = request.into_inner();
        let id = WebhookId::parse("id", &request.id)?;
        let record = self
            .store
            .set_webhook_enabled(id, request.enabled, "disabled by an admin")
            .await?
            .ok_or_else(|| not_found("webhook", id))?;
        tracing::info!(webhook_id = %id, enabled = request.enabled, "webhook enabled state set");
        Ok(Response::new(convert::webhook(&record)))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<()>, Status> {
        let id = WebhookId::parse("id", &request.get_ref().id)?;
        if !self.store.delete_webhook(id).await? {
            return Err(not_found("webhook", id));
        }
        tracing::info!(webhook_id = %id, "webhook deleted");
        Ok(Response::new(()))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let request = request.into_inner();
        let id = WebhookId::parse("id", &request.id)?;
        let secret = Self::parse_secret("secret", &request.secret)?;
        let grace = match request.grace_period {
            None => DEFAULT_GRACE,
            Some(d) if d.seconds < 0 || d.nanos < 0 => {
                return Err(bad(ValidationError::new(
                    "grace_period",
                    "must not be negative",
                )));
            }
            Some(d) => Duration::new(d.seconds as u64, d.nanos as u32),
        };
        if grace > MAX_GRACE {
            return Err(bad(ValidationError::new(
                "grace_period",
                "must be at most 7 days",
            )));
        }
        let record = self
            .store
            .rotate_webhook_secret(id, &secret, grace)
            .await?
            .ok_or_else(|| not_found("webhook", id))?;
        tracing::info!(webhook_id = %id, grace_seconds = grace.as_secs(), "webhook secret rotated");
        Ok(Response::new(pb::RotateWebhookSecretResponse {
            webhook: Some(convert::webhook(&record)),
            secret: secret.to_whsec(),
        }))
    }

    async fn list_deliveries(
        &self,
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
        let before = PageToken::parse(&request.page_token, &filters, &self.page_tokens)?;
        let (records, next) = self.store.list_deliveries(&filter, before, limit).await?;
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: records.iter().map(|r| convert::delivery(r, &[])).collect(),
            next_page_token: next
                .map(|t| t.encode(&filters, &self.page_tokens))
                .unwrap_or_default(),
        }))
    }

    async fn get_delivery(
        &self,
        request: Request<pb::GetDeliveryRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        let id = DeliveryId::parse("id", &request.get_ref().id)?;
        match self.store.get_delivery(id).await? {
            Some((delivery, attempts)) => {
                Ok(Response::new(convert::delivery(&delivery, &attempts)))
            }
            None => Err(not_found("delivery", id)),
        }
    }

    async fn resend_delivery(
        &self,
        request: Request<pb::ResendDeliveryRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        let id = DeliveryId::parse("id", &request.get_ref().id)?;
        let Some((delivery, _)) = self.store.get_delivery(id).await? else {
            return Err(not_found("delivery", id));
        };
        self.require_sendable(delivery.webhook_id).await?;
        let record = self
            .store
            .requeue_delivery(id, AttemptTrigger::Resend)
            .await?
            .ok_or_else(|| not_found("delivery", id))?;
        tracing::info!(delivery_id = %id, webhook_id = %record.webhook_id, "delivery resent");
        Ok(Response::new(convert::delivery(&record, &[])))
    }

    async fn recover_failed_deliveries(
        &self,
        request: Request<pb::RecoverFailedDeliveriesRequest>,
    ) -> Result<Response<pb::RecoverFailedDeliveriesResponse>, Status> {
        let request = request.into_inner();
        let webhook_id = WebhookId::parse("webhook_id", &request.webhook_id)?;
        let Some(since) = request.since.as_ref() else {
            return Err(bad(ValidationError::new("since", "is required")));
        };
        let since = timestamps::from_proto("since", since)?;
        self.require_sendable(webhook_id).await?;
        let recovered = self.store.recover_failed(webhook_id, since).await?;
        tracing::info!(webhook_id = %webhook_id, recovered, "failed deliveries recovered");
        Ok(Response::new(pb::RecoverFailedDeliveriesResponse {
            recovered: u32::try_from(recovered).unwrap_or(u32::MAX),
        }))
    }

    async fn send_test_event(
        &self,
        request: Request<pb::SendTestEventRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        let webhook_id = WebhookId::parse("webhook_id", &request.get_ref().webhook_id)?;
        let webhook = self.require_sendable(webhook_id).await?;
        let event = PublishedEvent::test_ping(webhook_id, webhook.function);
        let delivery_id = self.store.enqueue_test_event(webhook_id, &event).await?;
        let Some((delivery, attempts)) = self.store.get_delivery(delivery_id).await? else {
            return Err(Status::internal("test delivery vanished"));
        };
        Ok(Response::new(convert::delivery(&delivery, &attempts)))
    }

    async fn get_webhook_stats(
        &self,
        request: Request<pb::GetWebhookStatsRequest>,
    ) -> Result<Response<pb::WebhookStats>, Status> {
        let request = request.into_inner();
        let id = WebhookId::parse("id", &request.id)?;
        let since = match &request.since {
            Some(ts) => timestamps::from_proto("since", ts)?,
            None => time::OffsetDateTime::now_utc() - time::Duration::days(1),
        };
        if self.store.get_webhook(id).await?.is_none() {
            return Err(not_found("webhook", id));
        }
        let stats = self.store.webhook_stats(id, since).await?;
        Ok(Response::new(convert::webhook_stats(id, since, &stats)))
    }

    type WatchDeliveriesStream = WatchStream;

    async fn watch_deliveries(
        &self,
        request: Request<pb::WatchDeliveriesRequest>,
    ) -> Result<Response<Self::WatchDeliveriesStream>, Status> {
        // Network calls are served by `super::watch::WatchDeliveriesRoute`, which sends the
        // hub's encoded updates as they are; this is the same stream for in-process callers.
        let stream = super::watch::open(self.hub.clone(), request.into_inner()).await?;
        Ok(Response::new(Box::pin(super::watch::decoded(stream))))
    }
}

impl AdminService {
    /// The webhook, if it exists and is enabled: sending to a deleted or disabled webhook would
    /// leave the delivery waiting, which is not what an admin clicking "Resend" expects.
    async fn require_sendable(
        &self,
        webhook_id: WebhookId,
    ) -> Result<crate::store::WebhookRecord, Status> {
        let webhook = self.store.get_webhook(webhook_id).await?.ok_or_else(|| {
            Status::failed_precondition(format!(
                "webhook {webhook_id} was deleted or does not exist"
            ))
        })?;
        if !webhook.enabled {
            return Err(Status::failed_precondition(format!(
                "webhook {webhook_id} is disabled; enable it with SetWebhookEnabled first"
            )));
        }
        Ok(webhook)
    }
}

/// Applies the masked fields of `update` onto `current` and checks the result as a whole (a
/// selection must still select something after a partial edit). A new destination has passed the
/// SSRF guard already (see `update_webhook`).
fn merge_update(
    current: &crate::store::WebhookRecord,
    current_headers: &CustomHeaders,
    update: &pb::Webhook,
    fields: &[UpdateField],
) -> Result<WebhookChanges, ValidationError> {
    let mut changes = WebhookChanges {
        name: WebhookName::parse("webhook.name", &current.name)?,
        destination_url: DestinationUrl::parse(
            "webhook.destination_url",
            &current.destination_url,
            true,
        )?,
        function: current.function,
        events: current.events.clone(),
        description: Description::parse("webhook.description", &current.description)?,
        deliver_once_per_request: current.deliver_once_per_request,
        headers: current_headers.clone(),
        client_certificate: Change::Keep,
        server_ca: Change::Keep,
    };
    let mut nodes = current.events.approval_nodes().to_vec();
    let mut rejection = current.events.rejection();
    let mut events_touched = false;
    let update_events = update.events.clone().unwrap_or_default();
    for field in fields {
        match field {
            UpdateField::Name => changes.name = WebhookName::parse("webhook.name", &update.name)?,
            UpdateField::DestinationUrl => {
                changes.destination_url =
                    DestinationUrl::parse("webhook.destination_url", &update.destination_url, true)?
            }
            UpdateField::Function => {
                changes.function = convert::function("webhook.function", update.function)?
            }
            UpdateField::Events => {
                if update.events.is_none() {
                    return Err(ValidationError::new(
                        "webhook.events",
                        "is required when update_mask names events",
                    ));
                }
                nodes = update_events.approval_nodes.clone();
                rejection = update_events.rejection;
                events_touched = true;
            }
            UpdateField::ApprovalNodes => {
                nodes = update_events.approval_nodes.clone();
                events_touched = true;
            }
            UpdateField::Rejection => {
                rejection = update_events.rejection;
                events_touched = true;
            }
            UpdateField::Description => {
                changes.description =
                    Description::parse("webhook.description", &update.description)?
            }
            UpdateField::DeliverOncePerRequest => {
                changes.deliver_once_per_request = update.deliver_once_per_request
            }
            UpdateField::Headers => {
                changes.headers = parse_headers(update, Some(current_headers))?;
            }
            UpdateField::ClientCertificate => {
                changes.client_certificate = Change::from_option(parse_client_certificate(update)?);
            }
            UpdateField::ServerCa => {
                changes.server_ca = Change::from_option(parse_server_ca(update)?);
            }
        }
    }
    check_tls_needs_https(
        &changes.destination_url,
        has(
            &changes.client_certificate,
            current.client_certificate.is_some(),
        ),
        has(&changes.server_ca, current.server_ca.is_some()),
        !fields.contains(&UpdateField::ClientCertificate)
            && !fields.contains(&UpdateField::ServerCa),
    )?;
    if events_touched {
        changes.events = EventSelection::parse("webhook.events", &nodes, rejection)?;
    }
    Ok(changes)
}

/// The custom headers of a webhook message, under `webhook.headers`; `current` lets an update
/// keep values it does not retype (see [`CustomHeaders::parse`]).
fn parse_headers(
    webhook: &pb::Webhook,
    current: Option<&CustomHeaders>,
) -> Result<CustomHeaders, ValidationError> {
    let input: Vec<(String, String)> = webhook
        .headers
        .iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    CustomHeaders::parse("webhook.headers", &input, current)
}

/// The client certificate of a webhook message: both PEM fields empty means none.
fn parse_client_certificate(
    webhook: &pb::Webhook,
) -> Result<Option<ClientCertificate>, ValidationError> {
    const CERT: &str = "webhook.client_certificate_pem";
    const KEY: &str = "webhook.client_key_pem";
    match (
        webhook.client_certificate_pem.trim().is_empty(),
        webhook.client_key_pem.trim().is_empty(),
    ) {
        (true, true) => Ok(None),
        (false, true) => Err(ValidationError::new(
            KEY,
            "is required with client_certificate_pem",
        )),
        (true, false) => Err(ValidationError::new(
            CERT,
            "is required with client_key_pem",
        )),
        (false, false) => ClientCertificate::parse(
            CERT,
            KEY,
            &webhook.client_certificate_pem,
            &webhook.client_key_pem,
        )
        .map(Some),
    }
}

/// The private CA of a webhook message: empty means the public roots.
fn parse_server_ca(webhook: &pb::Webhook) -> Result<Option<PrivateCa>, ValidationError> {
    if webhook.server_ca_pem.trim().is_empty() {
        return Ok(None);
    }
    PrivateCa::parse("webhook.server_ca_pem", &webhook.server_ca_pem).map(Some)
}

/// TLS settings on an `http://` destination would never be used, and a setting that is
/// accepted but not enforced misleads: refuse it. `blame_url` names the destination (an edit
/// made it http while TLS settings stay) rather than the TLS field.
fn check_tls_needs_https(
    destination: &DestinationUrl,
    client_certificate: bool,
    server_ca: bool,
    blame_url: bool,
) -> Result<(), ValidationError> {
    if destination.as_url().scheme() == "https" || (!client_certificate && !server_ca) {
        return Ok(());
    }
    let field = if blame_url {
        "webhook.destination_url"
    } else if client_certificate {
        "webhook.client_certificate_pem"
    } else {
        "webhook.server_ca_pem"
    };
    Err(ValidationError::new(
        field,
        "a client certificate or private CA needs an https destination_url",
    ))
}

/// Whether a setting exists after `change`, given whether it exists `now`.
fn has<T>(change: &Change<T>, now: bool) -> bool {
    match change {
        Change::Keep => now,
        Change::Set(_) => true,
        Change::Remove => false,
    }
}
