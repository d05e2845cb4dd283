//! The code generated from `proto/` by `build.rs`: messages, servers and clients.
//!
//! The service's side. Other Rust services use the `webhooks-client` crate (`clients/rust`),
//! which adds a token, TLS, deadlines, retries and decoded error details; these clients work
//! too:
//!
//! ```no_run
//! use webhooks::proto::v1::{ListWebhooksRequest, webhook_admin_client::WebhookAdminClient};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut admin = WebhookAdminClient::connect("http://127.0.0.1:50051").await?;
//! let page = admin.list_webhooks(ListWebhooksRequest::default()).await?.into_inner();
//! for webhook in page.webhooks {
//!     println!("{} -> {}", webhook.name, webhook.destination_url);
//! }
//! # Ok(())
//! # }
//! ```

/// `backoffice.webhooks.v1`: the webhook service's contract.
pub mod v1 {
    // Generated: its docs are the .proto comments, written for the proto (`<base64>` is no HTML).
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        rustdoc::invalid_html_tags
    )]
    tonic::include_proto!("backoffice.webhooks.v1");
}

/// The encoded file descriptor set of every `.proto` file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("webhooks_descriptor");
