package webhooks

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	webhooksv1 "backoffice.internal/webhooks/clients/go/backoffice/webhooks/v1"
)

// StopWatching, returned by a Watch handler, ends Watch with a nil error.
var StopWatching = errors.New("webhooks: stop watching")

const watchMethod = "/backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries"

// Watch streams the delivery updates request selects to handle, oldest first: those after
// request.AfterCursor (none: from now on), then the live tail. When the stream breaks with a code
// the service config retries for WatchDeliveries (UNAVAILABLE: a lost connection, a restart), it
// reconnects after a backoff, waiting for the service to be back, and resumes after the cursor of
// the last update handled, so none is lost or handled twice. It gives up after the service
// config's maxAttempts failures in a row with no update in between.
// To resume later, keep the Cursor of the last update handled and pass it as AfterCursor.
//
// It returns nil when handle returns StopWatching, handle's error when it returns another, and
// otherwise the stream's error (ctx's end included).
func (c *Client) Watch(ctx context.Context, request *webhooksv1.WatchDeliveriesRequest, handle func(*webhooksv1.DeliveryUpdate) error) error {
	request = proto.Clone(request).(*webhooksv1.WatchDeliveriesRequest)
	policy, _ := c.retries.lookup(watchMethod)
	backoff := policy.initialBackoff
	failures := 0
	for {
		err := c.watchOnce(ctx, request, handle, &failures)
		var stopped handlerError
		if errors.As(err, &stopped) {
			if errors.Is(stopped.err, StopWatching) {
				return nil
			}
			return stopped.err
		}
		if ctx.Err() != nil || !policy.retryable[status.Code(err)] {
			return err
		}
		// Attempts count failures in a row: a stream that delivered updates starts afresh.
		failures++
		if failures >= policy.maxAttempts {
			return err
		}
		if failures == 1 {
			backoff = policy.initialBackoff
		}
		if !sleep(ctx, policy.delay(err, backoff)) {
			return err
		}
		backoff = policy.next(backoff)
	}
}

// watchOnce runs one stream until it fails or handle stops it, moving request.AfterCursor past
// each update handled.
func (c *Client) watchOnce(ctx context.Context, request *webhooksv1.WatchDeliveriesRequest, handle func(*webhooksv1.DeliveryUpdate) error, failures *int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// WaitForReady: after a lost connection, the new stream waits for the service to be back
	// (a restart) instead of failing at once, for as long as ctx allows.
	stream, err := c.Admin.WatchDeliveries(ctx, request, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	for {
		update, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The service ended the stream (it is shutting down): like a lost connection.
				return status.Error(codes.Unavailable, "webhooks: the service ended the watch stream")
			}
			return err
		}
		*failures = 0
		if err := handle(update); err != nil {
			return handlerError{err}
		}
		request.AfterCursor = update.GetCursor()
	}
}

// handlerError is what the handler returned, told apart from the stream's own errors: a
// handler's UNAVAILABLE (from a call of its own) ends Watch rather than reconnecting it.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
