// @backoffice/webhooks-client: a Node.js client of the webhooks service. The generated messages
// and service descriptors are also importable one file at a time, e.g.
// "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb".

export { type ClientOptions, createWebhooksClient, type TlsOptions, type WebhooksClient } from "./client.js";
export { type FieldViolation, fieldViolations, retryDelayMs } from "./errors.js";
export { type DecisionInput, decisionRequest, type Outcome, type Subject } from "./publish.js";
export { retryInterceptor } from "./retry.js";
export {
  defaultServiceConfig,
  loadServiceConfig,
  type MethodConfig,
  parseServiceConfig,
  type RetryPolicy,
  type ServiceConfig,
} from "./service-config.js";
export { Code, ConnectError } from "@connectrpc/connect";
export * from "./gen/backoffice/webhooks/v1/admin_pb.js";
export * from "./gen/backoffice/webhooks/v1/delivery_pb.js";
export * from "./gen/backoffice/webhooks/v1/ingest_pb.js";
export * from "./gen/backoffice/webhooks/v1/webhook_pb.js";
