package webhooks

import (
	"bytes"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	webhooksv1 "backoffice.internal/webhooks/clients/go/backoffice/webhooks/v1"
)

func TestTheEmbeddedServiceConfigIsTheSharedOne(t *testing.T) {
	shared, err := os.ReadFile("../../service-config.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, sharedServiceConfig) {
		t.Fatal("clients/go/webhooks/service-config.json differs from clients/service-config.json: copy it again")
	}
}

func TestTheRetryPolicyOfEachMethodComesFromTheServiceConfig(t *testing.T) {
	policies, withoutRetries, err := loadServiceConfig()
	if err != nil {
		t.Fatal(err)
	}
	publish, ok := policies.lookup("/backoffice.webhooks.v1.EventIngest/PublishEvent")
	if !ok || publish.maxAttempts != 5 || publish.initialBackoff != 100*time.Millisecond ||
		publish.maxBackoff != 5*time.Second || !publish.retryable[codes.ResourceExhausted] || !publish.retryable[codes.Unavailable] {
		t.Fatalf("PublishEvent's policy: %+v", publish)
	}
	watch, ok := policies.lookup(watchMethod)
	if !ok || watch.retryable[codes.ResourceExhausted] || !watch.retryable[codes.Unavailable] {
		t.Fatalf("WatchDeliveries' policy: %+v", watch)
	}
	if bytes.Contains([]byte(withoutRetries), []byte("retryPolicy")) || !bytes.Contains([]byte(withoutRetries), []byte(`"timeout":"10s"`)) {
		t.Fatalf("the config given to grpc: %s", withoutRetries)
	}
	if capped := policies.capped(1); capped["/backoffice.webhooks.v1.EventIngest/"].maxAttempts != 1 {
		t.Fatalf("capped to 1: %+v", capped)
	}
}

func TestADecisionBecomesItsPublishEventRequest(t *testing.T) {
	withdrawal := &webhooksv1.WithdrawalRequest{Id: "WD-1"}
	approved, err := Decision{IdempotencyKey: "k", Approved: true, ApprovalNode: 2, Withdrawal: withdrawal}.Request()
	if err != nil {
		t.Fatal(err)
	}
	if approved.GetDecision() != webhooksv1.Decision_DECISION_APPROVED || approved.ApprovalNode == nil ||
		approved.GetApprovalNode() != 2 || approved.GetWithdrawal() != withdrawal || approved.GetIdempotencyKey() != "k" {
		t.Fatalf("an approval became %v", approved)
	}
	// A rejection has no approval node at all (the service refuses one), not node 0.
	rejected, err := Decision{IdempotencyKey: "k", ApprovalNode: 2, Withdrawal: withdrawal}.Request()
	if err != nil {
		t.Fatal(err)
	}
	if rejected.GetDecision() != webhooksv1.Decision_DECISION_REJECTED || rejected.ApprovalNode != nil {
		t.Fatalf("a rejection became %v", rejected)
	}
	if _, err := (Decision{IdempotencyKey: "k"}).Request(); err == nil {
		t.Fatal("a decision on no request was accepted")
	}
	two := Decision{IdempotencyKey: "k", Withdrawal: withdrawal, PropTradingLiveStage: &webhooksv1.PropTradingLiveStageRequest{}}
	if _, err := two.Request(); err == nil {
		t.Fatal("a decision on two requests was accepted")
	}
}
