package webhooks

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "backoffice.internal/webhooks/clients/go/backoffice/webhooks/v1"
)

// Decision is one decision on one client request, to publish. Set exactly one of Withdrawal,
// PropTradingParticipation and PropTradingLiveStage.
type Decision struct {
	// IdempotencyKey is unique per event (1 to 200 characters): a repeat publishes nothing twice,
	// which is what makes retrying a publish safe.
	IdempotencyKey string
	// Approved is an approval at ApprovalNode; false is a rejection.
	Approved bool
	// ApprovalNode is the approver level (1-based) that approved; ignored for a rejection.
	ApprovalNode uint32
	// OccurredAt is when the decision was taken; zero means now.
	OccurredAt time.Time
	// Withdrawal is the withdrawal decided on.
	Withdrawal *webhooksv1.WithdrawalRequest
	// PropTradingParticipation is the challenge purchase decided on.
	PropTradingParticipation *webhooksv1.PropTradingParticipationRequest
	// PropTradingLiveStage is the funded-account request decided on.
	PropTradingLiveStage *webhooksv1.PropTradingLiveStageRequest
}

// Request is the PublishEventRequest of the decision, or an error when it names no request or
// more than one.
func (d Decision) Request() (*webhooksv1.PublishEventRequest, error) {
	request := &webhooksv1.PublishEventRequest{IdempotencyKey: d.IdempotencyKey}
	if d.Approved {
		request.Decision = webhooksv1.Decision_DECISION_APPROVED
		request.ApprovalNode = proto.Uint32(d.ApprovalNode)
	} else {
		request.Decision = webhooksv1.Decision_DECISION_REJECTED
	}
	if !d.OccurredAt.IsZero() {
		request.OccurredAt = timestamppb.New(d.OccurredAt)
	}
	set := 0
	if d.Withdrawal != nil {
		request.Request = &webhooksv1.PublishEventRequest_Withdrawal{Withdrawal: d.Withdrawal}
		set++
	}
	if d.PropTradingParticipation != nil {
		request.Request = &webhooksv1.PublishEventRequest_PropTradingParticipation{PropTradingParticipation: d.PropTradingParticipation}
		set++
	}
	if d.PropTradingLiveStage != nil {
		request.Request = &webhooksv1.PublishEventRequest_PropTradingLiveStage{PropTradingLiveStage: d.PropTradingLiveStage}
		set++
	}
	if set != 1 {
		return nil, errors.New("webhooks: a Decision needs exactly one of Withdrawal, PropTradingParticipation and PropTradingLiveStage")
	}
	return request, nil
}

// PublishDecision publishes the decision (PublishEvent). A repeat with the same idempotency key
// and content answers Duplicate and queues nothing.
func (c *Client) PublishDecision(ctx context.Context, d Decision) (*webhooksv1.PublishEventResponse, error) {
	request, err := d.Request()
	if err != nil {
		return nil, err
	}
	return c.Ingest.PublishEvent(ctx, request)
}
