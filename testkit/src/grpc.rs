//! gRPC helpers shared by the suites: tokens on requests, status assertions, health and
//! delivery-status waits that work for in-process services and child processes alike.

use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

use crate::PATIENCE;

/// `message` as a gRPC request carrying `authorization: Bearer <token>` when a token is given.
pub fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("valid header"),
        );
    }
    request
}

/// Adds `authorization: Bearer <token>` to every call of a client, for suites whose service
/// always requires a token.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    /// An interceptor sending `token`.
    pub fn new(token: &str) -> Self {
        Self(
            format!("Bearer {token}")
                .parse()
                .expect("a token is a valid header value"),
        )
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Asserts that `result` failed with `code` and that its message mentions `needle`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    needle: &str,
) {
    match result {
        Ok(value) => panic!("expected {code:?} mentioning `{needle}`, got success: {value:?}"),
        Err(status) => {
            assert_eq!(
                status.code(),
                code,
                "unexpected code; message: {}",
                status.message()
            );
            assert!(
                status.message().contains(needle),
                "message `{}` does not mention `{needle}`",
                status.message()
            );
        }
    }
}

/// Waits (within [`PATIENCE`]) until the delivery reaches `status` as `admin` reads it, and
/// returns it with its attempts (also for services the test did not spawn in process).
pub async fn wait_for_delivery_status_of(
    admin: &WebhookAdminClient<Channel>,
    delivery_id: &str,
    status: pb::DeliveryStatus,
) -> pb::Delivery {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let delivery = admin
            .clone()
            .get_delivery(pb::GetDeliveryRequest {
                id: delivery_id.into(),
            })
            .await
            .expect("delivery readable")
            .into_inner();
        if delivery.status == status as i32 {
            return delivery;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("delivery {delivery_id} never reached {status:?}; last seen: {delivery:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One health check of `service` ("" for the whole server) on `channel`.
pub(crate) async fn health(channel: Channel, service: &str) -> Result<ServingStatus, String> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|e| format!("health check: {e}"))?
        .into_inner();
    Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
}

/// Waits (within [`PATIENCE`]) until the health service says SERVING for the whole server and
/// both API services.
pub async fn wait_until_serving(channel: Channel) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut serving = true;
        for service in [
            "",
            "backoffice.webhooks.v1.WebhookAdmin",
            "backoffice.webhooks.v1.EventIngest",
        ] {
            serving &= health(channel.clone(), service).await == Ok(ServingStatus::Serving);
        }
        if serving {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("the service did not report SERVING within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
