package webhooks_test

// The snippets of docs/clients.md ("## Go"), each between "// doc:NAME" and "// end doc:NAME":
// TestDocSnippetsAreTheTestedCode checks the page shows exactly these lines, and the flow test
// runs them against the service.

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	webhooksv1 "backoffice.internal/webhooks/clients/go/backoffice/webhooks/v1"
	"backoffice.internal/webhooks/clients/go/webhooks"
)

// connect is the page's "Connect" snippet.
func connect(addr, token, caFile, certFile, keyFile string) (*webhooks.Client, error) {
	// doc:connect
	client, err := webhooks.Dial(addr, webhooks.Options{
		Token:          token,    // sent as "authorization: Bearer ..." on every call
		CAFile:         caFile,   // "" trusts the system's roots
		ClientCertFile: certFile, // for a service started with --tls-client-ca
		ClientKeyFile:  keyFile,
	})
	if err != nil {
		return nil, err
	}
	// end doc:connect
	return client, nil
}

// publish is the page's "Publish a decision" snippet.
func publish(ctx context.Context, client *webhooks.Client) (*webhooksv1.PublishEventResponse, error) {
	// doc:publish
	response, err := client.PublishDecision(ctx, webhooks.Decision{
		IdempotencyKey: "WD-1001/approved/1", // the same key again publishes nothing twice
		Approved:       true,
		ApprovalNode:   1,
		Withdrawal: &webhooksv1.WithdrawalRequest{
			Id:       "WD-1001",
			ClientId: "C-77",
			Amount:   "250.00",
			Currency: "USD",
		},
	})
	if err != nil {
		return nil, err
	}
	fmt.Println("event", response.GetEventId(), "deliveries", response.GetDeliveryIds(),
		"duplicate", response.GetDuplicate())
	// end doc:publish
	return response, nil
}

// createWithABadURL is the page's "Field errors" snippet.
func createWithABadURL(ctx context.Context, client *webhooks.Client) ([]webhooks.FieldError, error) {
	// doc:field-error
	_, err := client.Admin.CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{
		Webhook: &webhooksv1.Webhook{
			Name:           "Ledger",
			DestinationUrl: "ledger.internal/webhooks", // no scheme
			Function:       webhooksv1.Function_FUNCTION_WITHDRAWAL,
			Events:         &webhooksv1.EventSelection{ApprovalNodes: []uint32{1}},
		},
	})
	if status.Code(err) == codes.InvalidArgument {
		for _, field := range webhooks.FieldErrors(err) {
			// e.g. "webhook.destination_url: must be an absolute http(s) URL (...)"
			fmt.Printf("%s: %s\n", field.Field, field.Rule)
		}
	}
	// end doc:field-error
	return webhooks.FieldErrors(err), err
}

// watch is the page's "Watch deliveries" snippet: it handles updates of webhookID's deliveries
// after cursor until done says so, and returns the cursor to resume after.
func watch(ctx context.Context, client *webhooks.Client, webhookID, cursor string, done func(*webhooksv1.DeliveryUpdate) bool) (string, error) {
	// doc:watch
	// cursor: of the last update handled, kept across restarts ("" starts now, "0" replays
	// the whole retained log).
	err := client.Watch(ctx, &webhooksv1.WatchDeliveriesRequest{WebhookId: webhookID, AfterCursor: cursor},
		func(update *webhooksv1.DeliveryUpdate) error {
			fmt.Println(update.GetKind(), update.GetDelivery().GetId(), update.GetDelivery().GetStatus())
			cursor = update.GetCursor() // resuming after it repeats nothing and skips nothing
			if done(update) {
				return webhooks.StopWatching
			}
			return nil
		})
	// end doc:watch
	return cursor, err
}
