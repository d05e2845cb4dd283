//! Who did what: the actor behind a request and the audit entries that record changes.
//!
//! Every credential has a name: an API key its own, a configured token the name given in a
//! `name:token` entry (or, for a bare token, its role and the last 4 hex digits of its SHA-256,
//! e.g. `admin-1a2b`). Authentication off (the open local mode) is the actor `local`; what the
//! service does on its own (auto-disable, 410 disable, the circuit breaker) is `system`; and the
//! commands that work on the database directly (`webhooks keys`, `webhooks reencrypt`) are
//! `cli:<OS user>`, role `database`.

use serde_json::Value;

/// A named caller and the role it acts in (`admin`, `ingest`, `viewer`, or `system` and
/// `database` for the service itself and direct database commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The credential's name, `local`, `system` or `cli:<user>`.
    pub name: String,
    /// The role's name.
    pub role: String,
}

impl Actor {
    /// A credential's actor.
    pub fn named(name: impl Into<String>, role: &str) -> Self {
        Self {
            name: name.into(),
            role: role.to_owned(),
        }
    }

    /// The open local mode (no authentication): may do everything.
    pub fn local() -> Self {
        Self::named("local", "admin")
    }

    /// The service itself.
    pub fn system() -> Self {
        Self::named("system", "system")
    }

    /// Someone running a command against the database directly, by their OS user name.
    pub fn database_operator() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".to_owned());
        Self::named(format!("cli:{user}"), "database")
    }

    /// The name a bare configured token goes by: its role and the last 4 hex digits of its
    /// SHA-256 (`admin-1a2b`), enough to tell tokens apart without revealing them.
    pub fn bare_token_name(role: &str, token_hash: &[u8; 32]) -> String {
        format!("{role}-{:02x}{:02x}", token_hash[30], token_hash[31])
    }
}

/// What reaches every handler about its request: who, from where, with which client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// Who.
    pub actor: Actor,
    /// The peer's socket address, empty when unknown (in-process calls).
    pub peer: String,
    /// The `user-agent` header (the CLI, the console and grpcurl each send theirs).
    pub user_agent: String,
    /// The request's id: its AIP-155 `request_id` where the RPC has one and the caller set it
    /// ([`RequestContext::with_request_id`]), else the caller's `x-request-id` header; empty
    /// without either.
    pub request_id: String,
}

impl RequestContext {
    /// This context with `request_id` (a request's AIP-155 field) as its request id, unless it
    /// is empty: the id a retry repeats is the one the audit row should name.
    #[must_use]
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        if !request_id.is_empty() {
            request_id.clone_into(&mut self.request_id);
        }
        self
    }

    /// A context with only an actor (direct database commands, the service itself).
    pub fn of(actor: Actor) -> Self {
        Self {
            actor,
            peer: String::new(),
            user_agent: String::new(),
            request_id: String::new(),
        }
    }

    /// An audit entry by this context.
    pub fn audit(
        &self,
        action: AuditAction,
        target_kind: &'static str,
        target_id: impl ToString,
        diff: Value,
    ) -> AuditEntry<'_> {
        AuditEntry {
            context: self,
            action,
            target_kind,
            target_id: target_id.to_string(),
            diff,
        }
    }
}

/// What an audit row says happened. The names are what `ListAuditEvents` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// CreateWebhook.
    WebhookCreated,
    /// UpdateWebhook.
    WebhookUpdated,
    /// SetWebhookEnabled(true).
    WebhookEnabled,
    /// SetWebhookEnabled(false).
    WebhookDisabled,
    /// DeleteWebhook.
    WebhookDeleted,
    /// RotateWebhookSecret.
    WebhookSecretRotated,
    /// ResendDelivery.
    DeliveryResent,
    /// RecoverFailedDeliveries.
    DeliveriesRecovered,
    /// SendTestEvent.
    TestEventSent,
    /// `webhooks keys create`.
    ApiKeyCreated,
    /// `webhooks keys revoke`.
    ApiKeyRevoked,
    /// `webhooks reencrypt`.
    SecretsReencrypted,
}

impl AuditAction {
    /// The stored name. System actions are named in SQL (src/store/deliveries/queue.rs):
    /// `webhook.auto_disabled`, `webhook.disabled_gone`, `webhook.circuit_opened`,
    /// `webhook.circuit_closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookCreated => "webhook.created",
            Self::WebhookUpdated => "webhook.updated",
            Self::WebhookEnabled => "webhook.enabled",
            Self::WebhookDisabled => "webhook.disabled",
            Self::WebhookDeleted => "webhook.deleted",
            Self::WebhookSecretRotated => "webhook.secret_rotated",
            Self::DeliveryResent => "delivery.resent",
            Self::DeliveriesRecovered => "webhook.deliveries_recovered",
            Self::TestEventSent => "webhook.test_event_sent",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::SecretsReencrypted => "secrets.reencrypted",
        }
    }
}

/// One audit row to write with a change.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// Who, from where.
    pub context: &'a RequestContext,
    /// What.
    pub action: AuditAction,
    /// What kind of thing it was done to: `webhook`, `delivery`, `api_key`, `vault`.
    pub target_kind: &'static str,
    /// Its id (empty for `vault`).
    pub target_id: String,
    /// Field-level `{"field": {"before": .., "after": ..}}`, or other facts of the action; never
    /// a secret (secret-bearing fields say `"changed"`).
    pub diff: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_token_is_named_by_role_and_the_tail_of_its_hash() {
        let mut hash = [0u8; 32];
        hash[30] = 0x1a;
        hash[31] = 0x2b;
        assert_eq!(Actor::bare_token_name("admin", &hash), "admin-1a2b");
    }
}
