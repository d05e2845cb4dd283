// Package webhooks is the Go client of the webhooks service: the generated gRPC stubs
// (package webhooksv1) behind a connection that sends a bearer token, speaks TLS (system roots
// or a CA file, optionally with a client certificate), gives every call a default deadline and
// retries UNAVAILABLE and RESOURCE_EXHAUSTED as the shared service config says; with helpers to
// publish a decision, read a bad request's field errors and watch deliveries with resume.
package webhooks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	webhooksv1 "backoffice.internal/webhooks/clients/go/backoffice/webhooks/v1"
)

// DefaultTimeout is the deadline of a unary call whose context has none (the service config's).
const DefaultTimeout = 10 * time.Second

// Options says how to reach the service. The zero value is TLS with the system's roots, no
// token, DefaultTimeout and the shared retry policy.
type Options struct {
	// Token is sent as "authorization: Bearer <token>" on every call. Empty sends none.
	Token string
	// CAFile is a PEM file of the CAs that may sign the service's certificate, instead of the
	// system's roots.
	CAFile string
	// ClientCertFile and ClientKeyFile are a PEM certificate and key to present, for a service
	// started with --tls-client-ca. Both or neither.
	ClientCertFile string
	// ClientKeyFile is the key of ClientCertFile.
	ClientKeyFile string
	// Plaintext speaks unencrypted HTTP/2, for a service on loopback without --tls-cert. The
	// token, if any, then crosses in clear.
	Plaintext bool
	// Timeout is the deadline of a unary call whose context has none; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts caps the attempts of one unary call (the first included); 0 means the service
	// config's (5), 1 disables retries.
	MaxAttempts int
}

// Client is a connection to the service with its two APIs.
type Client struct {
	conn *grpc.ClientConn
	// Admin is the WebhookAdmin API: webhooks, deliveries, WatchDeliveries.
	Admin webhooksv1.WebhookAdminClient
	// Ingest is the EventIngest API: publishing decisions.
	Ingest  webhooksv1.EventIngestClient
	retries retryPolicies
}

// Dial connects to target ("host:port"). It does not wait for the connection: the first call
// does, within its deadline.
func Dial(target string, options Options) (*Client, error) {
	transport, err := transportCredentials(options)
	if err != nil {
		return nil, err
	}
	retries, serviceConfig, err := loadServiceConfig()
	if err != nil {
		return nil, err
	}
	if options.MaxAttempts > 0 {
		retries = retries.capped(options.MaxAttempts)
	}
	timeout := options.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialOptions := []grpc.DialOption{
		transport,
		// The timeouts of the shared service config; its retryPolicy is applied by the
		// interceptor below instead (see loadServiceConfig).
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithChainUnaryInterceptor(deadlineInterceptor(timeout), retries.unaryInterceptor()),
	}
	if options.Token != "" {
		dialOptions = append(dialOptions, grpc.WithPerRPCCredentials(bearerToken{
			token:  options.Token,
			secure: !options.Plaintext,
		}))
	}
	conn, err := grpc.Dial(target, dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: dial %s: %w", target, err)
	}
	return &Client{
		conn:    conn,
		Admin:   webhooksv1.NewWebhookAdminClient(conn),
		Ingest:  webhooksv1.NewEventIngestClient(conn),
		retries: retries,
	}, nil
}

// Close closes the connection; calls in flight fail with CANCELED.
func (c *Client) Close() error {
	return c.conn.Close()
}

func transportCredentials(options Options) (grpc.DialOption, error) {
	if options.Plaintext {
		if options.CAFile != "" || options.ClientCertFile != "" {
			return nil, errors.New("webhooks: Plaintext cannot be combined with CAFile or a client certificate")
		}
		return grpc.WithInsecure(), nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if options.CAFile != "" {
		pem, err := os.ReadFile(options.CAFile)
		if err != nil {
			return nil, fmt.Errorf("webhooks: CA file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("webhooks: CA file %s holds no PEM certificate", options.CAFile)
		}
		config.RootCAs = roots
	}
	if (options.ClientCertFile == "") != (options.ClientKeyFile == "") {
		return nil, errors.New("webhooks: ClientCertFile and ClientKeyFile go together")
	}
	if options.ClientCertFile != "" {
		certificate, err := tls.LoadX509KeyPair(options.ClientCertFile, options.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("webhooks: client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{certificate}
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(config)), nil
}

// bearerToken sends the token on every call; over TLS only unless the caller chose Plaintext.
type bearerToken struct {
	token  string
	secure bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerToken) RequireTransportSecurity() bool {
	return b.secure
}

// deadlineInterceptor gives a call whose context has no deadline the default one.
func deadlineInterceptor(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply interface{}, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
