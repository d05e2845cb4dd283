//! Typed helpers for publishing a decision: a [`Verdict`] and the request it is about become a
//! [`PublishEventRequest`], so a caller cannot send an approval without its node or a rejection
//! with one (the service would refuse either with INVALID_ARGUMENT).

use std::time::SystemTime;

use crate::v1::{
    self, PropTradingLiveStageRequest, PropTradingParticipationRequest, PublishEventRequest,
    WithdrawalRequest, publish_event_request::Request,
};

/// What was decided on a client request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Approved at this approver level (the 1-based "node N", 1 to 1000).
    Approved {
        /// The approver level that approved.
        node: u32,
    },
    /// Rejected (at whatever level).
    Rejected,
}

impl From<WithdrawalRequest> for Request {
    fn from(withdrawal: WithdrawalRequest) -> Self {
        Request::Withdrawal(withdrawal)
    }
}

impl From<PropTradingParticipationRequest> for Request {
    fn from(participation: PropTradingParticipationRequest) -> Self {
        Request::PropTradingParticipation(participation)
    }
}

impl From<PropTradingLiveStageRequest> for Request {
    fn from(live_stage: PropTradingLiveStageRequest) -> Self {
        Request::PropTradingLiveStage(live_stage)
    }
}

/// The `PublishEvent` request for `verdict` on `request` (a [`WithdrawalRequest`],
/// [`PropTradingParticipationRequest`] or [`PropTradingLiveStageRequest`]), under
/// `idempotency_key`: a repeat with the same key and content publishes nothing new, so the
/// call is safe to retry. `occurred_at` unset means now.
pub fn decision(
    idempotency_key: impl Into<String>,
    verdict: Verdict,
    request: impl Into<Request>,
    occurred_at: Option<SystemTime>,
) -> PublishEventRequest {
    let (decision, approval_node) = match verdict {
        Verdict::Approved { node } => (v1::Decision::Approved, Some(node)),
        Verdict::Rejected => (v1::Decision::Rejected, None),
    };
    PublishEventRequest {
        idempotency_key: idempotency_key.into(),
        decision: decision as i32,
        approval_node,
        occurred_at: occurred_at.map(prost_types::Timestamp::from),
        request: Some(request.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_carries_its_node_and_a_rejection_none() {
        let withdrawal = WithdrawalRequest {
            id: "wd-1".to_owned(),
            amount: "10.00".to_owned(),
            ..Default::default()
        };
        let approved = decision(
            "k1",
            Verdict::Approved { node: 2 },
            withdrawal.clone(),
            None,
        );
        assert_eq!(approved.decision, v1::Decision::Approved as i32);
        assert_eq!(approved.approval_node, Some(2));
        assert_eq!(approved.request, Some(Request::Withdrawal(withdrawal)));
        assert_eq!(approved.occurred_at, None);

        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let rejected = decision(
            "k2",
            Verdict::Rejected,
            PropTradingLiveStageRequest::default(),
            Some(at),
        );
        assert_eq!(rejected.decision, v1::Decision::Rejected as i32);
        assert_eq!(rejected.approval_node, None);
        assert_eq!(rejected.occurred_at.map(|t| t.seconds), Some(1_700_000_000));
        assert!(matches!(
            rejected.request,
            Some(Request::PropTradingLiveStage(_))
        ));
    }
}
