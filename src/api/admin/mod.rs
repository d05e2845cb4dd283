//! `WebhookAdmin`: webhook configuration and delivery history. The RPCs live by resource in
//! `webhooks` and `deliveries`; this file holds the service and the trait impl that routes to
//! them, and `WatchDeliveries` (served by `super::watch`).

mod audit;
mod deliveries;
mod request_ids;
mod webhooks;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::invalid_argument;
use crate::delivery::DestinationGuard;
use crate::domain::{PageTokenKeys, Secret, ValidationError};
use crate::proto::v1 as pb;
use crate::proto::v1::webhook_admin_server::WebhookAdmin;
use crate::store::Store;
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
        webhooks::create_webhook(self, request).await
    }

    async fn get_webhook(
        &self,
        request: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        webhooks::get_webhook(self, request).await
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        webhooks::list_webhooks(self, request).await
    }

    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        webhooks::update_webhook(self, request).await
    }

    async fn set_webhook_enabled(
        &self,
        request: Request<pb::SetWebhookEnabledRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        webhooks::set_webhook_enabled(self, request).await
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<()>, Status> {
        webhooks::delete_webhook(self, request).await
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        webhooks::rotate_webhook_secret(self, request).await
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        deliveries::list_deliveries(self, request).await
    }

    async fn get_delivery(
        &self,
        request: Request<pb::GetDeliveryRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        deliveries::get_delivery(self, request).await
    }

    async fn resend_delivery(
        &self,
        request: Request<pb::ResendDeliveryRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        deliveries::resend_delivery(self, request).await
    }

    async fn recover_failed_deliveries(
        &self,
        request: Request<pb::RecoverFailedDeliveriesRequest>,
    ) -> Result<Response<pb::RecoverFailedDeliveriesResponse>, Status> {
        deliveries::recover_failed_deliveries(self, request).await
    }

    async fn send_test_event(
        &self,
        request: Request<pb::SendTestEventRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        deliveries::send_test_event(self, request).await
    }

    async fn get_webhook_stats(
        &self,
        request: Request<pb::GetWebhookStatsRequest>,
    ) -> Result<Response<pb::WebhookStats>, Status> {
        webhooks::get_webhook_stats(self, request).await
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        audit::list_audit_events(self, request).await
    }

    type WatchDeliveriesStream = WatchStream;

    async fn watch_deliveries(
        &self,
        request: Request<pb::WatchDeliveriesRequest>,
    ) -> Result<Response<Self::WatchDeliveriesStream>, Status> {
        // Network calls are served by `super::watch::WatchDeliveriesRoute`, which sends the
        // hub's encoded updates as they are; this is the same stream for in-process callers.
        let stream = super::watch::in_process(self.hub.clone(), request.into_inner()).await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
