//! A PublishEvent request as plain data, not yet checked. The API builds it from the wire message
//! (`api::convert`); the CLI, tests and fuzz targets can build it directly. Every string is as the
//! caller sent it: [`super::PublishedEvent::parse`] applies the rules and names the field.

use super::timestamps::UnixTime;

/// The decision a caller states, before it is checked against the approval node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// DECISION_APPROVED: needs an approval node.
    Approved,
    /// DECISION_REJECTED: must have no approval node.
    Rejected,
}

/// An event to publish, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventInput {
    /// The caller's idempotency key; required.
    pub idempotency_key: String,
    /// `None` when the caller left the decision unspecified or sent an unknown value.
    pub decision: Option<DecisionKind>,
    /// The approver level of an approval.
    pub approval_node: Option<u32>,
    /// When the decision was taken; `None` means now.
    pub occurred_at: Option<UnixTime>,
    /// The client request the decision is about; required.
    pub request: Option<RequestInput>,
    /// The request's bytes as published: their SHA-256 tells a true repeat from a key reused, so
    /// they must be the same bytes for the same request on every instance and release.
    pub content: Vec<u8>,
}

/// The client request of an event, one kind per [`super::Function`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestInput {
    /// A withdrawal request.
    Withdrawal(WithdrawalInput),
    /// A prop-trading participation request.
    PropTradingParticipation(ParticipationInput),
    /// A prop-trading live-stage request.
    PropTradingLiveStage(LiveStageInput),
}

/// A withdrawal request, unchecked; fields as in `WithdrawalRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WithdrawalInput {
    /// The request's id; required.
    pub id: String,
    /// The client's id; required.
    pub client_id: String,
    /// Free text.
    pub client_name: String,
    /// Empty or an email address.
    pub client_email: String,
    /// Free text.
    pub trading_account: String,
    /// A positive decimal string; required.
    pub amount: String,
    /// An ISO-4217 code; required.
    pub currency: String,
    /// Free text.
    pub payment_method: String,
    /// Where the money goes, when given.
    pub beneficiary: Option<BeneficiaryInput>,
    /// When the client submitted the request.
    pub submitted_at: Option<UnixTime>,
    /// Free text.
    pub status: String,
    /// Free text.
    pub remarks: String,
}

/// A withdrawal's beneficiary, unchecked; every field is free text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BeneficiaryInput {
    /// Free text.
    pub account_holder: String,
    /// Free text.
    pub bank_name: String,
    /// Free text.
    pub iban: String,
    /// Free text.
    pub account_number: String,
    /// Free text.
    pub swift_code: String,
    /// Free text.
    pub wallet_address: String,
    /// Free text.
    pub network: String,
}

/// A prop-trading participation request, unchecked; fields as in
/// `PropTradingParticipationRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipationInput {
    /// The request's id; required.
    pub id: String,
    /// The client's id; required.
    pub client_id: String,
    /// Free text.
    pub client_name: String,
    /// Empty or an email address.
    pub client_email: String,
    /// Free text.
    pub program: String,
    /// Free text.
    pub challenge: String,
    /// Empty or a decimal string.
    pub account_size: String,
    /// Empty or a decimal string.
    pub fee: String,
    /// An ISO-4217 code; required with an account size or fee.
    pub currency: String,
    /// Free text.
    pub evaluation_account: String,
    /// When the client submitted the request.
    pub submitted_at: Option<UnixTime>,
    /// Free text.
    pub status: String,
    /// Free text.
    pub remarks: String,
}

/// A prop-trading live-stage request, unchecked; fields as in `PropTradingLiveStageRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStageInput {
    /// The request's id; required.
    pub id: String,
    /// The client's id; required.
    pub client_id: String,
    /// Free text.
    pub client_name: String,
    /// Empty or an email address.
    pub client_email: String,
    /// Free text.
    pub program: String,
    /// Free text.
    pub challenge: String,
    /// Empty or a decimal string.
    pub account_size: String,
    /// An ISO-4217 code; required with an account size.
    pub currency: String,
    /// Free text.
    pub evaluation_account: String,
    /// Free text.
    pub live_account: String,
    /// When the client submitted the request.
    pub submitted_at: Option<UnixTime>,
    /// Free text.
    pub status: String,
    /// Free text.
    pub remarks: String,
}
