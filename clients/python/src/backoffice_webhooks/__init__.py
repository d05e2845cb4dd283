"""Client of the back office's webhooks gRPC API.

`Client.connect` opens one channel with a bearer token, TLS, a default deadline and retries
(the shared service config, with RetryInfo honoured); `client.admin` and `client.ingest` are
the generated stubs. `approval` and `rejection` build typed decisions; `field_violations` reads
the field and rule out of an INVALID_ARGUMENT.

The messages are the generated modules of `backoffice.webhooks.v1`, re-exported here:
`admin_pb2`, `delivery_pb2`, `ingest_pb2`, `webhook_pb2`.
"""

from backoffice.webhooks.v1 import admin_pb2, delivery_pb2, ingest_pb2, webhook_pb2

from .client import Client, Tls, service_config
from .decisions import ClientRequest, approval, rejection
from .errors import FieldViolation, error_info, field_violations, retry_delay, status_of

__all__ = [
    "Client",
    "ClientRequest",
    "FieldViolation",
    "Tls",
    "admin_pb2",
    "approval",
    "delivery_pb2",
    "error_info",
    "field_violations",
    "ingest_pb2",
    "rejection",
    "retry_delay",
    "service_config",
    "status_of",
    "webhook_pb2",
]
