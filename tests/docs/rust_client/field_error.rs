use webhooks_client::tonic::Code;
use webhooks_client::{Client, FieldViolation, StatusDetails as _, v1};

/// What became of a webhook to create.
pub enum Created {
    /// Created, with this id.
    Webhook(String),
    /// Refused: each field of the request that broke a rule, and the rule.
    Refused(Vec<FieldViolation>),
}

/// Creates a webhook for withdrawal approvals at node 1 and rejections, sending to `url`.
pub async fn create_webhook(
    client: &Client,
    name: &str,
    url: &str,
) -> Result<Created, webhooks_client::Error> {
    let request = v1::CreateWebhookRequest {
        webhook: Some(v1::Webhook {
            name: name.to_owned(),
            destination_url: url.to_owned(),
            function: v1::Function::Withdrawal as i32,
            events: Some(v1::EventSelection {
                approval_nodes: vec![1],
                rejection: true,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    match client.admin().create_webhook(request).await {
        Ok(response) => Ok(Created::Webhook(
            response.into_inner().webhook.unwrap_or_default().id,
        )),
        // INVALID_ARGUMENT carries a google.rpc.BadRequest: field -> rule, for every field.
        Err(status) if status.code() == Code::InvalidArgument => {
            Ok(Created::Refused(status.field_violations()))
        }
        Err(status) => Err(status.into()),
    }
}
