//! PublishEvent requests into the domain's plain [`EventInput`].

use prost::Message;

use crate::domain::timestamps::UnixTime;
use crate::domain::{
    BeneficiaryInput, DecisionKind, EventInput, LiveStageInput, ParticipationInput, PublishedEvent,
    RequestInput, ValidationError, WithdrawalInput,
};
use crate::proto::v1 as pb;
use crate::proto::v1::publish_event_request::Request;

/// Checks a PublishEvent request; `field_prefix` is `""` or `events[i].` for batches.
pub fn published_event(
    request: &pb::PublishEventRequest,
    field_prefix: &str,
) -> Result<PublishedEvent, ValidationError> {
    PublishedEvent::parse(&event_input(request), field_prefix)
}

/// The request as plain data. Its `content` is the request's protobuf encoding, as it always
/// was: stored content hashes keep telling repeats from reused keys.
pub fn event_input(request: &pb::PublishEventRequest) -> EventInput {
    EventInput {
        idempotency_key: request.idempotency_key.clone(),
        decision: match pb::Decision::try_from(request.decision) {
            Ok(pb::Decision::Approved) => Some(DecisionKind::Approved),
            Ok(pb::Decision::Rejected) => Some(DecisionKind::Rejected),
            Ok(pb::Decision::Unspecified) | Err(_) => None,
        },
        approval_node: request.approval_node,
        occurred_at: request.occurred_at.as_ref().map(unix_time),
        request: request.request.as_ref().map(|inner| match inner {
            Request::Withdrawal(w) => RequestInput::Withdrawal(withdrawal(w)),
            Request::PropTradingParticipation(p) => {
                RequestInput::PropTradingParticipation(participation(p))
            }
            Request::PropTradingLiveStage(l) => RequestInput::PropTradingLiveStage(live_stage(l)),
        }),
        content: request.encode_to_vec(),
    }
}

fn unix_time(ts: &prost_types::Timestamp) -> UnixTime {
    UnixTime {
        seconds: ts.seconds,
        nanos: ts.nanos,
    }
}

fn withdrawal(w: &pb::WithdrawalRequest) -> WithdrawalInput {
    WithdrawalInput {
        id: w.id.clone(),
        client_id: w.client_id.clone(),
        client_name: w.client_name.clone(),
        client_email: w.client_email.clone(),
        trading_account: w.trading_account.clone(),
        amount: w.amount.clone(),
        currency: w.currency.clone(),
        payment_method: w.payment_method.clone(),
        beneficiary: w.beneficiary.as_ref().map(|b| BeneficiaryInput {
            account_holder: b.account_holder.clone(),
            bank_name: b.bank_name.clone(),
            iban: b.iban.clone(),
            account_number: b.account_number.clone(),
            swift_code: b.swift_code.clone(),
            wallet_address: b.wallet_address.clone(),
            network: b.network.clone(),
        }),
        submitted_at: w.submitted_at.as_ref().map(unix_time),
        status: w.status.clone(),
        remarks: w.remarks.clone(),
    }
}

fn participation(p: &pb::PropTradingParticipationRequest) -> ParticipationInput {
    ParticipationInput {
        id: p.id.clone(),
        client_id: p.client_id.clone(),
        client_name: p.client_name.clone(),
        client_email: p.client_email.clone(),
        program: p.program.clone(),
        challenge: p.challenge.clone(),
        account_size: p.account_size.clone(),
        fee: p.fee.clone(),
        currency: p.currency.clone(),
        evaluation_account: p.evaluation_account.clone(),
        submitted_at: p.submitted_at.as_ref().map(unix_time),
        status: p.status.clone(),
        remarks: p.remarks.clone(),
    }
}

fn live_stage(l: &pb::PropTradingLiveStageRequest) -> LiveStageInput {
    LiveStageInput {
        id: l.id.clone(),
        client_id: l.client_id.clone(),
        client_name: l.client_name.clone(),
        client_email: l.client_email.clone(),
        program: l.program.clone(),
        challenge: l.challenge.clone(),
        account_size: l.account_size.clone(),
        currency: l.currency.clone(),
        evaluation_account: l.evaluation_account.clone(),
        live_account: l.live_account.clone(),
        submitted_at: l.submitted_at.as_ref().map(unix_time),
        status: l.status.clone(),
        remarks: l.remarks.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn withdrawal(decision: pb::Decision, node: Option<u32>) -> pb::PublishEventRequest {
        pb::PublishEventRequest {
            idempotency_key: "k1".into(),
            decision: decision as i32,
            approval_node: node,
            occurred_at: None,
            request: Some(Request::Withdrawal(pb::WithdrawalRequest {
                id: "W-1".into(),
                client_id: "C-1".into(),
                amount: "100.50".into(),
                currency: "USD".into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn the_content_hash_tells_repeats_from_reuse() {
        let a = published_event(&withdrawal(pb::Decision::Rejected, None), "").unwrap();
        let b = published_event(&withdrawal(pb::Decision::Rejected, None), "").unwrap();
        let c = published_event(&withdrawal(pb::Decision::Approved, Some(2)), "").unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        assert_ne!(a.content_hash, c.content_hash);
    }

    #[test]
    fn unknown_decisions_are_unspecified() {
        let mut request = withdrawal(pb::Decision::Rejected, None);
        request.decision = 7;
        let err = published_event(&request, "events[2].").unwrap_err();
        assert_eq!(err.field, "events[2].decision");
    }
}
