use webhooks_client::tonic::Code;
use webhooks_client::{Client, v1};

/// Follows the deliveries of webhook `webhook_id` after `cursor` (empty: from now), handing
/// each update to `seen` until it returns false; returns the cursor of the last update read.
/// Store that cursor: a watcher that resumes with it misses nothing, across dropped
/// connections here and restarts of the caller.
pub async fn follow(
    client: &Client,
    webhook_id: &str,
    mut cursor: String,
    mut seen: impl FnMut(&v1::DeliveryUpdate) -> bool,
) -> Result<String, webhooks_client::Error> {
    loop {
        let request = v1::WatchDeliveriesRequest {
            webhook_id: webhook_id.to_owned(),
            after_cursor: cursor.clone(),
            ..Default::default()
        };
        let mut updates = client.admin().watch_deliveries(request).await?.into_inner();
        loop {
            match updates.message().await {
                Ok(Some(update)) => {
                    cursor.clone_from(&update.cursor);
                    if !seen(&update) {
                        return Ok(cursor);
                    }
                }
                // The stream ended or the connection dropped (the service restarted, say):
                // watch again after the last cursor read.
                Ok(None) => break,
                Err(status) if status.code() == Code::Unavailable => break,
                Err(status) => return Err(status.into()),
            }
        }
    }
}
