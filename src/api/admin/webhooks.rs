//! WebhookAdmin's webhook RPCs: create, read, list, edit, enable, delete, rotate the secret and
//! statistics, with the checks that turn a webhook message into valid settings.

use std::time::Duration;

use tonic::{Code, Request, Response, Status};

use super::request_ids;
use super::{AdminService, DEFAULT_GRACE, DEFAULT_PAGE_SIZE, MAX_GRACE, MAX_PAGE_SIZE, bad};
use crate::api::auth::context;
use crate::api::convert::{self, Reason, timestamps};
use crate::api::not_found;
use crate::domain::{
    Change, ClientCertificate, CustomHeaders, Description, DestinationUrl, EventSelection,
    Function, PageFilters, PageToken, PrivateCa, UpdateField, ValidationError, WebhookId,
    WebhookName, page_size, parse_update_mask,
};
use crate::proto::v1 as pb;
use crate::store::{NewWebhook, WebhookChanges, WebhookFilter};

pub(super) async fn create_webhook(
    service: &AdminService,
    request: Request<pb::CreateWebhookRequest>,
) -> Result<Response<pb::CreateWebhookResponse>, Status> {
    let context = context(&request).with_request_id(&request.get_ref().request_id);
    let key = match request_ids::key_or_answer(&service.store, "CreateWebhook", &request, |r| {
        &mut r.request_id
    })
    .await?
    {
        Ok(key) => key,
        Err(answer) => return Ok(Response::new(answer)),
    };
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
        secret: AdminService::parse_secret("secret", &request.secret)?,
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
    service
        .destinations
        .check_destination("webhook.destination_url", &new.destination_url)
        .await?;
    let mut connection = service.store.connection().await?;
    let tx = connection.answer_once(key.as_ref()).await?;
    let record = service
        .store
        .create_webhook_in(tx.client(), &new, &context)
        .await?;
    let answer = pb::CreateWebhookResponse {
        webhook: Some(convert::webhook(&record)),
        secret: new.secret.to_whsec(),
    };
    let answer = request_ids::commit(tx, key.as_ref(), &service.store, answer).await?;
    tracing::info!(webhook_id = %record.id, function = record.function.as_str(), "webhook created");
    Ok(Response::new(answer))
}

pub(super) async fn get_webhook(
    service: &AdminService,
    request: Request<pb::GetWebhookRequest>,
) -> Result<Response<pb::Webhook>, Status> {
    let id = WebhookId::parse("id", &request.get_ref().id)?;
    match service.store.get_webhook(id).await? {
        Some(record) => Ok(Response::new(convert::webhook(&record))),
        None => Err(not_found("webhook", id)),
    }
}

pub(super) async fn list_webhooks(
    service: &AdminService,
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
    let after = PageToken::parse(&request.page_token, &filters, &service.page_tokens)?;
    let (records, next) = service.store.list_webhooks(&filter, after, limit).await?;
    Ok(Response::new(pb::ListWebhooksResponse {
        webhooks: records.iter().map(convert::webhook).collect(),
        next_page_token: next
            .map(|t| t.encode(&filters, &service.page_tokens))
            .unwrap_or_default(),
    }))
}

pub(super) async fn update_webhook(
    service: &AdminService,
    request: Request<pb::UpdateWebhookRequest>,
) -> Result<Response<pb::Webhook>, Status> {
    let context = context(&request);
    let request = request.into_inner();
    let Some(webhook) = request.webhook else {
        return Err(bad(ValidationError::new("webhook", "is required")));
    };
    let id = WebhookId::parse("webhook.id", &webhook.id)?;
    let expected = convert::parse_etag("etag", &request.etag)?;
    let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
    let fields = parse_update_mask(&paths)?;
    if fields.contains(&UpdateField::DestinationUrl) {
        // Checked here, before the transaction, since it may resolve the name.
        let destination =
            DestinationUrl::parse("webhook.destination_url", &webhook.destination_url, true)?;
        service
            .destinations
            .check_destination("webhook.destination_url", &destination)
            .await?;
    }
    let outcome = service
        .store
        .update_webhook(id, &context, |current, headers| {
            // Checked on the row-locked current version: a concurrent edit either committed
            // before (a new revision: stale) or waits for this one.
            check_etag(expected, current)?;
            merge_update(current, headers, &webhook, &fields).map_err(bad)
        })
        .await?;
    match outcome {
        None => Err(not_found("webhook", id)),
        Some(Err(status)) => Err(status),
        Some(Ok(record)) => {
            tracing::info!(webhook_id = %id, fields = ?paths, "webhook updated");
            Ok(Response::new(convert::webhook(&record)))
        }
    }
}

pub(super) async fn set_webhook_enabled(
    service: &AdminService,
    request: Request<pb::SetWebhookEnabledRequest>,
) -> Result<Response<pb::Webhook>, Status> {
    let context = context(&request);
    let request = request.into_inner();
    let id = WebhookId::parse("id", &request.id)?;
    let expected = convert::parse_etag("etag", &request.etag)?;
    let Some(record) = service
        .store
        .set_webhook_enabled(
            id,
            request.enabled,
            "disabled by an admin",
            expected,
            &context,
        )
        .await?
    else {
        return Err(missing_or_stale(service, id, expected).await);
    };
    tracing::info!(webhook_id = %id, enabled = request.enabled, "webhook enabled state set");
    Ok(Response::new(convert::webhook(&record)))
}

pub(super) async fn delete_webhook(
    service: &AdminService,
    request: Request<pb::DeleteWebhookRequest>,
) -> Result<Response<()>, Status> {
    let id = WebhookId::parse("id", &request.get_ref().id)?;
    let expected = convert::parse_etag("etag", &request.get_ref().etag)?;
    if !service
        .store
        .delete_webhook(id, expected, &context(&request))
        .await?
    {
        return Err(missing_or_stale(service, id, expected).await);
    }
    tracing::info!(webhook_id = %id, "webhook deleted");
    Ok(Response::new(()))
}

pub(super) async fn rotate_webhook_secret(
    service: &AdminService,
    request: Request<pb::RotateWebhookSecretRequest>,
) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
    let context = context(&request).with_request_id(&request.get_ref().request_id);
    let key =
        match request_ids::key_or_answer(&service.store, "RotateWebhookSecret", &request, |r| {
            &mut r.request_id
        })
        .await?
        {
            Ok(key) => key,
            Err(answer) => return Ok(Response::new(answer)),
        };
    let request = request.into_inner();
    let id = WebhookId::parse("id", &request.id)?;
    let secret = AdminService::parse_secret("secret", &request.secret)?;
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
    let mut connection = service.store.connection().await?;
    let tx = connection.answer_once(key.as_ref()).await?;
    let record = service
        .store
        .rotate_webhook_secret_in(tx.client(), id, &secret, grace, &context)
        .await?
        .ok_or_else(|| not_found("webhook", id))?;
    let answer = pb::RotateWebhookSecretResponse {
        webhook: Some(convert::webhook(&record)),
        secret: secret.to_whsec(),
    };
    let answer = request_ids::commit(tx, key.as_ref(), &service.store, answer).await?;
    tracing::info!(webhook_id = %id, grace_seconds = grace.as_secs(), "webhook secret rotated");
    Ok(Response::new(answer))
}

pub(super) async fn get_webhook_stats(
    service: &AdminService,
    request: Request<pb::GetWebhookStatsRequest>,
) -> Result<Response<pb::WebhookStats>, Status> {
    let request = request.into_inner();
    let id = WebhookId::parse("id", &request.id)?;
    let since = match &request.since {
        Some(ts) => timestamps::from_proto("since", ts)?,
        None => time::OffsetDateTime::now_utc() - time::Duration::days(1),
    };
    if service.store.get_webhook(id).await?.is_none() {
        return Err(not_found("webhook", id));
    }
    let stats = service.store.webhook_stats(id, since).await?;
    Ok(Response::new(convert::webhook_stats(id, since, &stats)))
}

/// ABORTED when `expected` (from an etag) is not `current`'s revision.
fn check_etag(expected: Option<i64>, current: &crate::store::WebhookRecord) -> Result<(), Status> {
    match expected {
        Some(revision) if revision != current.revision => Err(stale_etag(current.id)),
        _ => Ok(()),
    }
}

fn stale_etag(id: WebhookId) -> Status {
    convert::error(
        Code::Aborted,
        Reason::StaleEtag,
        format!(
            "webhook {id} changed since it was read (the etag is stale): read it again, \
             then retry the change"
        ),
        &[("webhook_id", id.to_string())],
    )
}

/// Why a write guarded by `expected` changed no row: the webhook is gone (NOT_FOUND), or it is
/// there and its etag went stale (ABORTED). Told apart after the write, which changed nothing
/// either way.
async fn missing_or_stale(service: &AdminService, id: WebhookId, expected: Option<i64>) -> Status {
    if expected.is_none() {
        return not_found("webhook", id);
    }
    match service.store.get_webhook(id).await {
        Ok(Some(_)) => stale_etag(id),
        Ok(None) => not_found("webhook", id),
        Err(e) => e.into(),
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
                changes.destination_url = DestinationUrl::parse(
                    "webhook.destination_url",
                    &update.destination_url,
                    true,
                )?;
            }
            UpdateField::Function => {
                changes.function = convert::function("webhook.function", update.function)?;
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
                    Description::parse("webhook.description", &update.description)?;
            }
            UpdateField::DeliverOncePerRequest => {
                changes.deliver_once_per_request = update.deliver_once_per_request;
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
