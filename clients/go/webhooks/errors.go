package webhooks

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// FieldError is one field a request got wrong, and the rule it broke.
type FieldError struct {
	// Field is the request field's path, as the proto names it ("webhook.destination_url").
	Field string
	// Rule says what the field must be ("must be an absolute https:// URL").
	Rule string
}

// FieldErrors returns the field violations of the google.rpc.BadRequest detail the service
// attaches to INVALID_ARGUMENT, in order; nil for any other error.
func FieldErrors(err error) []FieldError {
	var fields []FieldError
	for _, detail := range status.Convert(err).Details() {
		if badRequest, ok := detail.(*errdetails.BadRequest); ok {
			for _, violation := range badRequest.GetFieldViolations() {
				fields = append(fields, FieldError{Field: violation.GetField(), Rule: violation.GetDescription()})
			}
		}
	}
	return fields
}
