use webhooks_client::{Client, Verdict, v1};

/// Publishes the approval of withdrawal `id` at approver level `node`; returns the ids of the
/// deliveries queued (one per matching webhook). Safe to retry: a repeat with the same
/// idempotency key and content publishes nothing new.
pub async fn approve_withdrawal(
    client: &Client,
    id: &str,
    node: u32,
) -> Result<Vec<String>, webhooks_client::Error> {
    let withdrawal = v1::WithdrawalRequest {
        id: id.to_owned(),
        client_id: "client-7".to_owned(),
        client_name: "Ada Lovelace".to_owned(),
        amount: "1250.00".to_owned(),
        currency: "EUR".to_owned(),
        payment_method: "bank_transfer".to_owned(),
        ..Default::default()
    };
    let published = client
        .publish_withdrawal_decision(
            format!("{id}/approved/{node}"),
            Verdict::Approved { node },
            withdrawal,
        )
        .await?;
    Ok(published.delivery_ids)
}
