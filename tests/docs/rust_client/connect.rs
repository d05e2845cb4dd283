use std::path::Path;
use std::time::Duration;

use webhooks_client::Client;

/// Connects to the service at `url` (`https://host:port`) with a bearer token, trusting the
/// private CA in `ca_file`, and presenting a client certificate and key when the service
/// requires mutual TLS. Unary calls get a 5 s deadline; UNAVAILABLE and RESOURCE_EXHAUSTED
/// are retried with backoff (clients/service-config.json).
pub async fn connect(
    url: &str,
    token: &str,
    ca_file: &Path,
    client_certificate: Option<(&Path, &Path)>,
) -> Result<Client, webhooks_client::Error> {
    let mut builder = Client::builder(url)
        .bearer_token(token)
        .ca_certificate_file(ca_file)
        .default_deadline(Duration::from_secs(5));
    if let Some((certificate, key)) = client_certificate {
        builder = builder.client_certificate_files(certificate, key);
    }
    builder.connect().await
}
