package webhooks

import (
	"bytes"
	"os"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

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

// requestWithID is a message named like CreateWebhookRequest with a request_id field, as the
// proto has it once AIP-155 keys land (built at run time, so this test does not wait for them).
func requestWithID(t *testing.T, name string) *dynamicpb.Message {
	t.Helper()
	file, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("request_id_test.proto"),
		Package: proto.String("backoffice.webhooks.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String(name),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name:     proto.String("request_id"),
				Number:   proto.Int32(3),
				Type:     descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
				JsonName: proto.String("requestId"),
			}},
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dynamicpb.NewMessage(file.Messages().Get(0))
}

// requestID is the request_id of a message made by requestWithID.
func requestID(message interface{}) string {
	reflected := message.(proto.Message).ProtoReflect()
	return reflected.Get(reflected.Descriptor().Fields().ByName("request_id")).String()
}

func TestAnEmptyRequestIDIsFilledOnceForEveryAttempt(t *testing.T) {
	original := requestWithID(t, "CreateWebhookRequest")
	filled := withRequestID(original)
	id := requestID(filled)
	if matched, _ := regexp.MatchString(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id); !matched {
		t.Fatalf("request_id %q is not a version 4 UUID", id)
	}
	if requestID(original) != "" {
		t.Fatal("the caller's own request was changed")
	}
	if requestID(withRequestID(filled)) != id {
		t.Fatal("a request_id already set was replaced")
	}
	// ListDeliveriesRequest's request_id is a filter: never filled.
	if requestID(withRequestID(requestWithID(t, "ListDeliveriesRequest"))) != "" {
		t.Fatal("ListDeliveriesRequest's request_id filter was filled")
	}
}
