//! The routes both ports serve (the API, reflection, health) and the two servers: the gRPC port
//! and the web console's.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::service::Routes;

use super::Application;
use crate::api::auth::{AuthLayer, Authenticator};
use crate::api::{AdminService, IngestService};
use crate::connections::ConnectionGuard;
use crate::console::ConsoleListener;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::v1::event_ingest_server::EventIngestServer;
use crate::proto::v1::webhook_admin_server::WebhookAdminServer;
use crate::shutdown::Shutdown;

/// Largest gRPC message accepted (a full PublishEvents batch fits comfortably).
const MAX_GRPC_MESSAGE: usize = 8 * 1024 * 1024;

/// Every route, built once: the gRPC port and the console serve the same service instances.
pub(super) fn routes(
    app: &Application,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    dispatcher: Option<crate::delivery::Dispatcher>,
) -> anyhow::Result<Routes> {
    let admin = WebhookAdminServer::new(AdminService::new(
        app.store.clone(),
        app.hub.clone(),
        app.destinations.clone(),
        app.page_tokens.clone(),
    ))
    .max_decoding_message_size(MAX_GRPC_MESSAGE);
    let ingest = EventIngestServer::new(IngestService::new(
        app.store.clone(),
        app.config.max_payload_bytes,
        dispatcher,
    ))
    .max_decoding_message_size(MAX_GRPC_MESSAGE);
    let routes = Routes::new(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(admin)
        .add_service(ingest);
    // WatchDeliveries takes its path over from the generated server (a static path wins over
    // the service's wildcard): it sends each update encoded once (src/api/watch.rs). Around
    // every route, so both ports answer unreadable requests as the caller's fault
    // (src/api/request_errors.rs).
    Ok(Routes::from(
        routes
            .into_axum_router()
            .route_service(
                crate::api::watch::WATCH_DELIVERIES_PATH,
                crate::api::watch::WatchDeliveriesRoute::new(
                    app.hub.clone(),
                    app.config.max_watch_streams_per_credential,
                ),
            )
            .layer(crate::api::request_errors::RequestErrorsLayer),
    ))
}

/// Server reflection of the API, the health service and `google.rpc.BadRequest` (so grpcurl
/// can show which field an error names), for either reflection version.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Serves the web console in a task of its own until `stopped` (sent with the gRPC port's
/// shutdown), logging why it stopped if it failed.
pub(super) fn serve_console(
    console: ConsoleListener,
    routes: Routes,
    auth: Arc<Authenticator>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    connections: ConnectionGuard,
    mut stopped: Shutdown,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tracing::info!(addr = %console.local_addr(), "web console listening");
    let serving = console.serve(routes, auth, tls, connections, async move {
        stopped.recv().await;
    });
    tokio::spawn(async move {
        let result = serving.await;
        if let Err(error) = &result {
            tracing::error!(error = format!("{error:#}"), "the web console stopped");
        }
        result
    })
}

/// Serves the gRPC port until `shutdown` resolves, then drains it.
pub(super) async fn serve_grpc(
    listener: TcpListener,
    routes: Routes,
    auth: Arc<Authenticator>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    connections: &ConnectionGuard,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // HTTP/1.1 and gRPC-Web too, so a browser app (or a proxy in front of one) may call this
    // port directly.
    let (builder, encrypted) = connections.server(tls)?;
    builder
        .layer(crate::api::grpc_web::layer())
        .layer(AuthLayer::new(auth))
        .add_routes(routes)
        .serve_with_incoming_shutdown(connections.incoming(listener, encrypted), shutdown)
        .await
        .context("gRPC server failed")
}
