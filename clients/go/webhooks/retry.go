package webhooks

import (
	"context"
	cryptorand "crypto/rand"
	_ "embed" // the shared service config, below
	"encoding/json"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// sharedServiceConfig is clients/service-config.json, the service config every client of this
// repository uses; a test checks that this copy is identical (go:embed cannot reach outside the
// module).
//
//go:embed service-config.json
var sharedServiceConfig []byte

// retryPolicy is one retryPolicy of the service config.
type retryPolicy struct {
	maxAttempts    int
	initialBackoff time.Duration
	maxBackoff     time.Duration
	multiplier     float64
	retryable      map[codes.Code]bool
}

// retryPolicies are the service config's policies by "/service/method", and by "/service/" for
// a whole service.
type retryPolicies map[string]retryPolicy

// loadServiceConfig returns the retry policies of the shared service config, and the config
// without them for grpc.WithDefaultServiceConfig. grpc-go applies a retryPolicy only from 1.40
// on (before, only with GRPC_GO_RETRY=on; Debian 12 ships 1.33), and never honours a
// google.rpc.RetryInfo: the client's own interceptor applies the same numbers on every version,
// and leaving them in too would retry each failed attempt again.
func loadServiceConfig() (retryPolicies, string, error) {
	var config struct {
		MethodConfig []struct {
			Name []struct {
				Service string `json:"service"`
				Method  string `json:"method"`
			} `json:"name"`
			RetryPolicy *struct {
				MaxAttempts          int          `json:"maxAttempts"`
				InitialBackoff       string       `json:"initialBackoff"`
				MaxBackoff           string       `json:"maxBackoff"`
				BackoffMultiplier    float64      `json:"backoffMultiplier"`
				RetryableStatusCodes []codes.Code `json:"retryableStatusCodes"`
			} `json:"retryPolicy"`
		} `json:"methodConfig"`
	}
	if err := json.Unmarshal(sharedServiceConfig, &config); err != nil {
		return nil, "", fmt.Errorf("webhooks: service config: %w", err)
	}
	policies := retryPolicies{}
	for _, method := range config.MethodConfig {
		if method.RetryPolicy == nil {
			continue
		}
		initial, err := parseDuration(method.RetryPolicy.InitialBackoff)
		if err != nil {
			return nil, "", err
		}
		max, err := parseDuration(method.RetryPolicy.MaxBackoff)
		if err != nil {
			return nil, "", err
		}
		policy := retryPolicy{
			maxAttempts:    method.RetryPolicy.MaxAttempts,
			initialBackoff: initial,
			maxBackoff:     max,
			multiplier:     method.RetryPolicy.BackoffMultiplier,
			retryable:      map[codes.Code]bool{},
		}
		for _, code := range method.RetryPolicy.RetryableStatusCodes {
			policy.retryable[code] = true
		}
		for _, name := range method.Name {
			policies["/"+name.Service+"/"+name.Method] = policy
		}
	}

	var raw map[string]interface{}
	if err := json.Unmarshal(sharedServiceConfig, &raw); err != nil {
		return nil, "", fmt.Errorf("webhooks: service config: %w", err)
	}
	if methods, ok := raw["methodConfig"].([]interface{}); ok {
		for _, method := range methods {
			if method, ok := method.(map[string]interface{}); ok {
				delete(method, "retryPolicy")
			}
		}
	}
	withoutRetries, err := json.Marshal(raw)
	if err != nil {
		return nil, "", fmt.Errorf("webhooks: service config: %w", err)
	}
	return policies, string(withoutRetries), nil
}

// parseDuration reads a service config duration ("0.1s").
func parseDuration(text string) (time.Duration, error) {
	seconds, err := strconv.ParseFloat(strings.TrimSuffix(text, "s"), 64)
	if err != nil || !strings.HasSuffix(text, "s") {
		return 0, fmt.Errorf("webhooks: service config: bad duration %q", text)
	}
	return time.Duration(seconds * float64(time.Second)), nil
}

// lookup returns the policy of a full method name ("/pkg.Service/Method"): the method's own,
// else its service's.
func (p retryPolicies) lookup(method string) (retryPolicy, bool) {
	if policy, ok := p[method]; ok {
		return policy, true
	}
	if slash := strings.LastIndex(method, "/"); slash > 0 {
		policy, ok := p[method[:slash+1]]
		return policy, ok
	}
	return retryPolicy{}, false
}

// capped returns the policies with at most maxAttempts attempts each.
func (p retryPolicies) capped(maxAttempts int) retryPolicies {
	capped := retryPolicies{}
	for name, policy := range p {
		if policy.maxAttempts > maxAttempts {
			policy.maxAttempts = maxAttempts
		}
		capped[name] = policy
	}
	return capped
}

// delay is how long to wait before the next attempt: the RetryInfo the service sent, else the
// current backoff with "equal jitter" (half of it, plus a random part of the other half), so
// retries of many clients spread out yet never come back at once.
func (policy retryPolicy) delay(err error, backoff time.Duration) time.Duration {
	if hint := retryInfoDelay(err); hint > 0 {
		return hint
	}
	half := backoff / 2
	return half + time.Duration(rand.Int63n(int64(half)+1))
}

// next is the backoff after current.
func (policy retryPolicy) next(current time.Duration) time.Duration {
	next := time.Duration(float64(current) * policy.multiplier)
	if next > policy.maxBackoff {
		return policy.maxBackoff
	}
	return next
}

// retryInfoDelay is the retry_delay of a google.rpc.RetryInfo detail of err, or 0.
func retryInfoDelay(err error) time.Duration {
	for _, detail := range status.Convert(err).Details() {
		if info, ok := detail.(*errdetails.RetryInfo); ok && info.GetRetryDelay() != nil {
			return info.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// unaryInterceptor retries a unary call that failed with a retryable code, within the call's
// deadline. Safe because every call that changes something carries a key that makes a repeat
// harmless: PublishEvent(s) their idempotency key (the caller's), the admin mutations a
// request_id (AIP-155), which withRequestID fills when the caller left it empty.
func (p retryPolicies) unaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply interface{}, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		policy, ok := p.lookup(method)
		if !ok {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		req = withRequestID(req)
		backoff := policy.initialBackoff
		for attempt := 1; ; attempt++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil || attempt >= policy.maxAttempts || !policy.retryable[status.Code(err)] {
				return err
			}
			if !sleep(ctx, policy.delay(err, backoff)) {
				return err
			}
			backoff = policy.next(backoff)
		}
	}
}

// sleep waits for d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// idempotentRequests are the requests whose request_id (AIP-155) makes the service answer a
// repeat with the first answer instead of acting twice. (ListDeliveriesRequest's request_id is a
// filter, not a key.)
var idempotentRequests = map[protoreflect.FullName]bool{
	"backoffice.webhooks.v1.CreateWebhookRequest":           true,
	"backoffice.webhooks.v1.ResendDeliveryRequest":          true,
	"backoffice.webhooks.v1.RecoverFailedDeliveriesRequest": true,
	"backoffice.webhooks.v1.SendTestEventRequest":           true,
	"backoffice.webhooks.v1.RotateWebhookSecretRequest":     true,
}

// withRequestID returns req with a new UUID as its request_id when it is one of
// idempotentRequests and has none (a copy: the caller's message is left alone), so that every
// attempt of the call carries the same id; else req itself.
func withRequestID(req interface{}) interface{} {
	message, ok := req.(proto.Message)
	if !ok {
		return req
	}
	descriptor := message.ProtoReflect().Descriptor()
	if !idempotentRequests[descriptor.FullName()] {
		return req
	}
	field := descriptor.Fields().ByName("request_id")
	if field == nil || field.Kind() != protoreflect.StringKind || message.ProtoReflect().Get(field).String() != "" {
		return req
	}
	id, err := newUUID()
	if err != nil {
		// No randomness: send it without a key, as the caller wrote it.
		return req
	}
	copied := proto.Clone(message)
	copied.ProtoReflect().Set(field, protoreflect.ValueOfString(id))
	return copied
}

// newUUID is a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := cryptorand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
