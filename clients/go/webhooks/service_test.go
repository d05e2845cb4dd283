package webhooks_test

// Tests against the real service. tests/clients/go.rs starts it (TLS with a client CA, an admin
// and an ingest token, an ingest rate limit of 2 per second per token, a receiver on
// 127.0.0.1) and runs `go test` with these variables; without them the tests fail, naming them.

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	webhooksv1 "backoffice.internal/webhooks/clients/go/backoffice/webhooks/v1"
	"backoffice.internal/webhooks/clients/go/webhooks"
)

type service struct {
	addr, adminToken, ingestToken, caFile, certFile, keyFile, receiverURL string
}

func theService(t *testing.T) service {
	t.Helper()
	get := func(name string) string {
		value := os.Getenv(name)
		if value == "" {
			t.Fatalf("%s is not set: these tests talk to a running service; run them with "+
				"`cargo test --test clients go`, which starts one", name)
		}
		return value
	}
	return service{
		addr:        get("WEBHOOKS_GO_TEST_ADDR"),
		adminToken:  get("WEBHOOKS_GO_TEST_ADMIN_TOKEN"),
		ingestToken: get("WEBHOOKS_GO_TEST_INGEST_TOKEN"),
		caFile:      get("WEBHOOKS_GO_TEST_CA_FILE"),
		certFile:    get("WEBHOOKS_GO_TEST_CLIENT_CERT"),
		keyFile:     get("WEBHOOKS_GO_TEST_CLIENT_KEY"),
		receiverURL: get("WEBHOOKS_GO_TEST_RECEIVER_URL"),
	}
}

// dial runs the page's connect snippet with the admin token, to addr (the service, or a proxy
// in front of it), and closes the client when the test ends.
func (svc service) dial(t *testing.T, addr string) *webhooks.Client {
	t.Helper()
	client, err := connect(addr, svc.adminToken, svc.caFile, svc.certFile, svc.keyFile)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// createWebhook creates a withdrawal webhook for approvals at node, delivering to url, and
// returns its id.
func createWebhook(ctx context.Context, t *testing.T, client *webhooks.Client, url string, node uint32) string {
	t.Helper()
	created, err := client.Admin.CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{
		Webhook: &webhooksv1.Webhook{
			Name:           "Go client",
			DestinationUrl: url,
			Function:       webhooksv1.Function_FUNCTION_WITHDRAWAL,
			Events:         &webhooksv1.EventSelection{ApprovalNodes: []uint32{node}},
		},
	})
	if err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	if created.GetWebhook().GetId() == "" || created.GetSecret() == "" || !created.GetWebhook().GetEnabled() {
		t.Fatalf("CreateWebhook answered %v", created)
	}
	return created.GetWebhook().GetId()
}

func kindsOf(updates []*webhooksv1.DeliveryUpdate) []webhooksv1.UpdateKind {
	kinds := []webhooksv1.UpdateKind{}
	for _, update := range updates {
		kinds = append(kinds, update.GetKind())
	}
	return kinds
}

// watchUntil runs the page's watch snippet after cursor until an update of kind last, and
// returns the updates it handled and the cursor to resume after.
func watchUntil(ctx context.Context, t *testing.T, client *webhooks.Client, webhookID, cursor string, last webhooksv1.UpdateKind) ([]*webhooksv1.DeliveryUpdate, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var updates []*webhooksv1.DeliveryUpdate
	next, err := watch(ctx, client, webhookID, cursor, func(update *webhooksv1.DeliveryUpdate) bool {
		updates = append(updates, update)
		return update.GetKind() == last
	})
	if err != nil {
		t.Fatalf("watching after cursor %q until %v: %v (saw %v)", cursor, last, err, kindsOf(updates))
	}
	return updates, next
}

func TestCreatePublishWatchHistoryResendAndAFieldErrorAgainstTheService(t *testing.T) {
	svc := theService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := svc.dial(t, svc.addr)
	webhookID := createWebhook(ctx, t, client, svc.receiverURL, 1)

	// Publish, then the same decision again: one delivery, and the repeat is a duplicate.
	published, err := publish(ctx, client)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if len(published.GetDeliveryIds()) != 1 || published.GetDuplicate() || published.GetEventType() != "withdrawal.approved" {
		t.Fatalf("the first publish answered %v", published)
	}
	deliveryID := published.GetDeliveryIds()[0]
	again, err := publish(ctx, client)
	if err != nil {
		t.Fatalf("publish again: %v", err)
	}
	if !again.GetDuplicate() || again.GetEventId() != published.GetEventId() {
		t.Fatalf("the repeated publish answered %v, the first %v", again, published)
	}

	// Watch from the start of the log, stopping after the first update; then resume after its
	// cursor: the delivery's creation is not seen again, its successful attempt is.
	first, cursor := watchUntil(ctx, t, client, webhookID, "0", webhooksv1.UpdateKind_UPDATE_KIND_CREATED)
	if kinds := kindsOf(first); !reflect.DeepEqual(kinds, []webhooksv1.UpdateKind{webhooksv1.UpdateKind_UPDATE_KIND_CREATED}) ||
		first[0].GetDelivery().GetId() != deliveryID || cursor != first[0].GetCursor() {
		t.Fatalf("watching from the start saw %v (cursor %q)", first, cursor)
	}
	resumed, cursor := watchUntil(ctx, t, client, webhookID, cursor, webhooksv1.UpdateKind_UPDATE_KIND_ATTEMPT_SUCCEEDED)
	if kinds := kindsOf(resumed); !reflect.DeepEqual(kinds, []webhooksv1.UpdateKind{webhooksv1.UpdateKind_UPDATE_KIND_ATTEMPT_SUCCEEDED}) ||
		resumed[0].GetDelivery().GetId() != deliveryID || resumed[0].GetAttempt().GetResponseStatus() != 204 {
		t.Fatalf("resuming after the creation saw %v", resumed)
	}

	// The history: one attempt, the receiver's 204.
	delivery, err := client.Admin.GetDelivery(ctx, &webhooksv1.GetDeliveryRequest{Id: deliveryID})
	if err != nil {
		t.Fatalf("GetDelivery: %v", err)
	}
	if delivery.GetStatus() != webhooksv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED || len(delivery.GetAttempts()) != 1 ||
		!delivery.GetAttempts()[0].GetSucceeded() || delivery.GetAttempts()[0].GetResponseStatus() != 204 {
		t.Fatalf("GetDelivery answered %v", delivery)
	}

	// Resend: a second attempt of the same delivery, seen by the watcher resuming where it was.
	if _, err := client.Admin.ResendDelivery(ctx, &webhooksv1.ResendDeliveryRequest{Id: deliveryID}); err != nil {
		t.Fatalf("ResendDelivery: %v", err)
	}
	afterResend, _ := watchUntil(ctx, t, client, webhookID, cursor, webhooksv1.UpdateKind_UPDATE_KIND_ATTEMPT_SUCCEEDED)
	wantKinds := []webhooksv1.UpdateKind{webhooksv1.UpdateKind_UPDATE_KIND_RESENT, webhooksv1.UpdateKind_UPDATE_KIND_ATTEMPT_SUCCEEDED}
	if kinds := kindsOf(afterResend); !reflect.DeepEqual(kinds, wantKinds) {
		t.Fatalf("after the resend the watcher saw %v, want %v", kinds, wantKinds)
	}
	delivery, err = client.Admin.GetDelivery(ctx, &webhooksv1.GetDeliveryRequest{Id: deliveryID})
	if err != nil {
		t.Fatalf("GetDelivery after the resend: %v", err)
	}
	if attempts := delivery.GetAttempts(); len(attempts) != 2 ||
		!containsTrigger(attempts, webhooksv1.AttemptTrigger_ATTEMPT_TRIGGER_RESEND) {
		t.Fatalf("after the resend GetDelivery answered %v", delivery)
	}

	// A bad request: INVALID_ARGUMENT with the field and its rule.
	fields, err := createWithABadURL(ctx, client)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateWebhook with a bad URL: %v, want INVALID_ARGUMENT", err)
	}
	if len(fields) != 1 || fields[0].Field != "webhook.destination_url" || fields[0].Rule == "" {
		t.Fatalf("the field errors of %v are %v", err, fields)
	}

	// A handler's own error ends the watch as it is, even an UNAVAILABLE that the stream's own
	// would be reconnected on.
	handlers := 0
	mine := status.Error(codes.Unavailable, "the handler's own call failed")
	err = client.Watch(ctx, &webhooksv1.WatchDeliveriesRequest{WebhookId: webhookID, AfterCursor: "0"},
		func(*webhooksv1.DeliveryUpdate) error {
			handlers++
			return mine
		})
	if err != mine || handlers != 1 {
		t.Fatalf("a handler failing with %v: Watch returned %v after %d calls", mine, err, handlers)
	}
}

func containsTrigger(attempts []*webhooksv1.DeliveryAttempt, trigger webhooksv1.AttemptTrigger) bool {
	for _, attempt := range attempts {
		if attempt.GetTrigger() == trigger {
			return true
		}
	}
	return false
}

func TestCallsWithoutTheTokenAreUnauthenticated(t *testing.T) {
	svc := theService(t)
	client, err := connect(svc.addr, "", svc.caFile, svc.certFile, svc.keyFile)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer client.Close()
	_, err = client.Admin.ListWebhooks(context.Background(), &webhooksv1.ListWebhooksRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ListWebhooks without a token: %v, want UNAUTHENTICATED", err)
	}
}

func TestPublishesOverTheIngestRateLimitAreRetriedUntilTheyPass(t *testing.T) {
	svc := theService(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(maxAttempts int) *webhooks.Client {
		client, err := webhooks.Dial(svc.addr, webhooks.Options{
			Token: svc.ingestToken, CAFile: svc.caFile, ClientCertFile: svc.certFile,
			ClientKeyFile: svc.keyFile, MaxAttempts: maxAttempts,
		})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		t.Cleanup(func() { client.Close() })
		return client
	}
	decision := func(key string) webhooks.Decision {
		return webhooks.Decision{
			IdempotencyKey: key,
			Withdrawal:     &webhooksv1.WithdrawalRequest{Id: key, ClientId: "C-1", Amount: "1.00", Currency: "EUR"},
		}
	}

	// Without retries, publishing faster than the limit is soon refused.
	once := dial(1)
	refused := false
	for i := 0; i < 20 && !refused; i++ {
		_, err := once.PublishDecision(ctx, decision(fmt.Sprintf("limit-probe-%d", i)))
		switch status.Code(err) {
		case codes.OK:
		case codes.ResourceExhausted:
			refused = true
		default:
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if !refused {
		t.Fatal("20 publishes in a row were never refused with RESOURCE_EXHAUSTED: the service has no rate limit")
	}

	// With the service config's retries, the same burst right after all pass.
	retrying := dial(0)
	for i := 0; i < 4; i++ {
		if _, err := retrying.PublishDecision(ctx, decision(fmt.Sprintf("retried-%d", i))); err != nil {
			t.Fatalf("publish %d with retries: %v", i, err)
		}
	}
}

func TestAWatchWhoseConnectionIsCutReconnectsAndResumesAfterItsCursor(t *testing.T) {
	svc := theService(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct := svc.dial(t, svc.addr)
	through := startProxy(t, svc.addr)
	watcher := svc.dial(t, through.addr())
	// Node 2: the other test's webhook (node 1) gets none of these events.
	webhookID := createWebhook(ctx, t, direct, svc.receiverURL+"-watch", 2)
	publishOne := func(key string) string {
		response, err := direct.PublishDecision(ctx, webhooks.Decision{
			IdempotencyKey: key, Approved: true, ApprovalNode: 2,
			Withdrawal: &webhooksv1.WithdrawalRequest{Id: key, ClientId: "C-1", Amount: "5.00", Currency: "EUR"},
		})
		if err != nil || len(response.GetDeliveryIds()) != 1 {
			t.Fatalf("publish %s: %v, %v", key, response, err)
		}
		return response.GetDeliveryIds()[0]
	}

	// Four updates are expected: each delivery's creation and successful attempt. A fifth would
	// be a repeat; Watch stops after the fourth.
	updates := make(chan *webhooksv1.DeliveryUpdate, 16)
	finished := make(chan error, 1)
	go func() {
		handled := 0
		finished <- watcher.Watch(ctx, &webhooksv1.WatchDeliveriesRequest{WebhookId: webhookID, AfterCursor: "0"},
			func(update *webhooksv1.DeliveryUpdate) error {
				updates <- update
				if handled++; handled == 4 {
					return webhooks.StopWatching
				}
				return nil
			})
	}()
	var seen []*webhooksv1.DeliveryUpdate
	var watchErr error
	ended := finished // nil once Watch has returned
	await := func(count int) {
		for len(seen) < count {
			select {
			case update := <-updates:
				seen = append(seen, update)
			case err := <-ended:
				// Watch returned: what it handled before is in the channel.
				watchErr, ended = err, nil
				for len(seen) < count {
					select {
					case update := <-updates:
						seen = append(seen, update)
					default:
						t.Fatalf("Watch ended after %v: %v", kindsOf(seen), err)
					}
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("waited 30 s for update %d; saw %v", len(seen)+1, kindsOf(seen))
			}
		}
	}

	first := publishOne("watch-cut-1")
	await(2)
	through.cut()
	second := publishOne("watch-cut-2")
	await(4)
	if ended != nil {
		watchErr = <-ended
	}
	if watchErr != nil {
		t.Fatalf("Watch: %v", watchErr)
	}

	type step struct {
		delivery string
		kind     webhooksv1.UpdateKind
	}
	var got []step
	for _, update := range seen {
		got = append(got, step{update.GetDelivery().GetId(), update.GetKind()})
	}
	want := []step{
		{first, webhooksv1.UpdateKind_UPDATE_KIND_CREATED},
		{first, webhooksv1.UpdateKind_UPDATE_KIND_ATTEMPT_SUCCEEDED},
		{second, webhooksv1.UpdateKind_UPDATE_KIND_CREATED},
		{second, webhooksv1.UpdateKind_UPDATE_KIND_ATTEMPT_SUCCEEDED},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the watcher saw %v, want %v", got, want)
	}
	if connections := through.connections(); connections < 2 {
		t.Fatalf("the watcher connected %d times through the proxy: the cut did not make it reconnect", connections)
	}
}

func TestTheDefaultDeadlineAppliesOnlyToCallsWithoutOne(t *testing.T) {
	svc := theService(t)
	client, err := webhooks.Dial(svc.addr, webhooks.Options{
		Token: svc.adminToken, CAFile: svc.caFile, ClientCertFile: svc.certFile,
		ClientKeyFile: svc.keyFile, Timeout: time.Microsecond,
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer client.Close()
	_, err = client.Admin.ListWebhooks(context.Background(), &webhooksv1.ListWebhooksRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a call with no deadline of its own and a 1 µs default: %v, want DEADLINE_EXCEEDED", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.Admin.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{}); err != nil {
		t.Fatalf("a call with its own 30 s deadline: %v", err)
	}
}
