// Cargo.toml: standardwebhooks = "1", http = "1"
use standardwebhooks::{Webhook, WebhookError};

/// Checks one delivery with the `standardwebhooks` crate: signature (constant time, any of the
/// space-separated ones) and a timestamp within 5 minutes. `headers` are the request's headers
/// and `body` the raw request body.
pub fn verify_with_library(
    secret: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    Webhook::new(secret)?.verify(body, headers)
}
