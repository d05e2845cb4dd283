import { describe, expect, it } from "vitest";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { BadRequestSchema } from "@backoffice/webhooks-client/gen/google/rpc/error_details_pb";
import { DeliverySchema } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/delivery_pb";
import { DeliveryStatus } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb";
import { Code, ConnectError, describeError, formFieldOf, problemMessage } from "./errors";
import {
  failingCount,
  webhookHealth,
  credentialPaths,
  describeDiff,
  formatDuration,
  formatTime,
  generateSecret,
  httpStatusText,
  isLargeBody,
  prettyBody,
  slugify,
  summarizeEvents,
  visibleNodeCount,
} from "./format";
import { matchesFilters, mergeDeliveries } from "./history";
import { href, parseRoute } from "./route";
import { renderMarkdown } from "./docs";

describe("summarizeEvents", () => {
  it("reads like the back office", () => {
    expect(summarizeEvents({ approvalNodes: [2, 1], rejection: true })).toBe("Approve node 1, 2 · Reject");
    expect(summarizeEvents({ approvalNodes: [3], rejection: false })).toBe("Approve node 3");
    expect(summarizeEvents({ approvalNodes: [], rejection: true })).toBe("Reject");
    expect(summarizeEvents({ approvalNodes: [], rejection: false })).toBe("None");
    expect(summarizeEvents(undefined)).toBe("None");
  });
  it("drops duplicates and zeros", () => {
    expect(summarizeEvents({ approvalNodes: [4, 4, 0, 1], rejection: false })).toBe("Approve node 1, 4");
  });
});

describe("visibleNodeCount", () => {
  it("shows at least three nodes and every selected one", () => {
    expect(visibleNodeCount([])).toBe(3);
    expect(visibleNodeCount([1, 7])).toBe(7);
  });
});

describe("formatting", () => {
  it("formats durations", () => {
    expect(formatDuration(undefined)).toBe("—");
    expect(formatDuration({ seconds: 0n, nanos: 35_000_000 } as never)).toBe("35 ms");
    expect(formatDuration({ seconds: 1n, nanos: 200_000_000 } as never)).toBe("1.20 s");
    expect(formatDuration({ seconds: 125n, nanos: 0 } as never)).toBe("2 min 5 s");
  });
  it("shows times in the given time zone", () => {
    const ts = timestampFromDate(new Date("2026-03-01T12:00:00Z"));
    expect(formatTime(ts, "en-GB", "Asia/Tokyo")).toBe("01/03/2026, 21:00:00");
    expect(formatTime(ts, "en-GB", "America/New_York")).toBe("01/03/2026, 07:00:00");
    expect(formatTime(undefined)).toBe("—");
  });
  it("pretty-prints JSON bodies only", () => {
    expect(prettyBody('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(prettyBody("not json")).toBe("not json");
    expect(prettyBody("{broken")).toBe("{broken");
  });
  it("collapses large bodies", () => {
    expect(isLargeBody("x".repeat(100))).toBe(false);
    expect(isLargeBody("x".repeat(5000))).toBe(true);
  });
  it("names HTTP statuses", () => {
    expect(httpStatusText(500)).toBe("500 Internal Server Error");
    expect(httpStatusText(299)).toBe("299");
    expect(httpStatusText(0)).toBe("No response");
  });
  it("generates Standard Webhooks secrets", () => {
    const secret = generateSecret((b) => b.fill(7));
    expect(secret).toBe(`whsec_${Buffer.alloc(32, 7).toString("base64")}`);
    expect(generateSecret()).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  });
  it("slugs headings like GitHub", () => {
    expect(slugify("Verifying the signature")).toBe("verifying-the-signature");
    expect(slugify("Retries, `410 Gone` and duplicates")).toBe("retries-410-gone-and-duplicates");
  });
});

describe("errors", () => {
  it("reads BadRequest field violations from INVALID_ARGUMENT", () => {
    const err = new ConnectError("webhook.name: is required", Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: { fieldViolations: [{ field: "webhook.name", description: "is required" }] } },
    ]);
    const p = describeError(err);
    expect(p.code).toBe(Code.InvalidArgument);
    expect(p.fields).toEqual({ "webhook.name": "is required" });
    expect(p.message).toContain("webhook.name: is required");
  });
  it("explains auth and availability codes", () => {
    expect(problemMessage(Code.Unauthenticated, "")).toContain("UNAUTHENTICATED");
    expect(problemMessage(Code.PermissionDenied, "the ingest role may not call X")).toContain("admin token");
    expect(problemMessage(Code.Unavailable, "")).toContain("try again");
    expect(describeError(new Error("boom")).code).toBe(Code.Unknown);
    const offline = new ConnectError("Failed to fetch", Code.Unknown, undefined, undefined, new TypeError("Failed to fetch"));
    expect(describeError(offline).code).toBe(Code.Unavailable);
    expect(describeError(offline).message).toContain("UNAVAILABLE");
  });
  it("maps API field paths to form fields", () => {
    expect(formFieldOf("webhook.name")).toBe("name");
    expect(formFieldOf("webhook.destination_url")).toBe("destination_url");
    expect(formFieldOf("webhook.events.approval_nodes")).toBe("events");
    expect(formFieldOf("webhook.events")).toBe("events");
    expect(formFieldOf("secret")).toBe("secret");
  });
});

describe("history", () => {
  const at = (iso: string) => timestampFromDate(new Date(iso));
  const d = (id: string, created: string, updated: string, status = DeliveryStatus.PENDING) =>
    create(DeliverySchema, { id, createdAt: at(created), updatedAt: at(updated), status, eventType: "withdrawal.approved" });
  it("keeps newest first and the latest version of each delivery", () => {
    const shown = [d("b", "2026-01-01T00:00:02Z", "2026-01-01T00:00:09Z", DeliveryStatus.SUCCEEDED)];
    const page = [
      d("b", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"),
      d("a", "2026-01-01T00:00:01Z", "2026-01-01T00:00:01Z"),
    ];
    const merged = mergeDeliveries(shown, page);
    expect(merged.map((x) => x.id)).toEqual(["b", "a"]);
    expect(merged[0].status).toBe(DeliveryStatus.SUCCEEDED);
    const live = mergeDeliveries(merged, [d("c", "2026-01-01T00:00:05Z", "2026-01-01T00:00:05Z")]);
    expect(live.map((x) => x.id)).toEqual(["c", "b", "a"]);
  });
  it("applies the filters to live updates", () => {
    const x = d("x", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    const none = { status: 0 as DeliveryStatus, eventType: "", requestId: "", from: "", to: "" };
    expect(matchesFilters(x, none)).toBe(true);
    expect(matchesFilters(x, { ...none, status: DeliveryStatus.FAILED })).toBe(false);
    expect(matchesFilters(x, { ...none, eventType: "withdrawal.rejected" })).toBe(false);
    expect(matchesFilters(x, { ...none, to: "2025-12-31T00:00" })).toBe(false);
  });
});

describe("routes", () => {
  it("round-trips", () => {
    for (const r of [
      { name: "list" },
      { name: "new" },
      { name: "edit", id: "w1" },
      { name: "history", id: "w1" },
      { name: "delivery", webhookId: "w1", id: "d1" },
      { name: "docs" },
    ] as const) {
      expect(parseRoute(href(r))).toEqual(r);
    }
    expect(parseRoute("")).toEqual({ name: "list" });
    expect(parseRoute("#/nonsense")).toEqual({ name: "list" });
  });
});

describe("docs", () => {
  it("renders headings with anchors and keeps in-page links in the page", () => {
    const html = renderMarkdown("# Receiving webhooks\n\nSee [the signature](#verifying-the-signature) and [API](grpc-api.md).\n\n## Verifying the signature\n");
    expect(html).toContain('<h1 id="receiving-webhooks">Receiving webhooks</h1>');
    expect(html).toContain('<h2 id="verifying-the-signature">');
    expect(html).toContain('data-anchor="verifying-the-signature"');
    expect(html).toContain('<span class="doc-ref"');
  });
});

describe("credentialPaths", () => {
  const none = {
    headersChanged: false,
    clientCertPem: "",
    clientKeyPem: "",
    removeClientCert: false,
    serverCaPem: "",
    removeServerCa: false,
  };
  it("leaves untouched credentials out of the mask", () => {
    expect(credentialPaths(none)).toEqual([]);
  });
  it("changes a certificate and its key together", () => {
    expect(credentialPaths({ ...none, clientCertPem: "-----BEGIN CERTIFICATE-----" })).toEqual([
      "client_certificate_pem",
      "client_key_pem",
    ]);
    expect(credentialPaths({ ...none, removeClientCert: true })).toEqual(["client_certificate_pem", "client_key_pem"]);
  });
  it("names headers and the CA when they change", () => {
    expect(credentialPaths({ ...none, headersChanged: true, removeServerCa: true })).toEqual([
      "headers",
      "server_ca_pem",
    ]);
  });
});

describe("describeDiff", () => {
  it("shows changes, creations, deletions and facts, and secrets only as changed", () => {
    expect(
      describeDiff({
        name: { before: "Old", after: "New" },
        destination_url: { after: "https://example.com/h" },
        headers: { before: ["X-Api-Key"], after: ["X-Api-Key"], value: "changed" },
        secret: { value: "changed" },
        reason: "disabled by an admin",
        description: { before: "gone" },
      }),
    ).toEqual([
      "name: Old → New",
      "destination_url: https://example.com/h",
      "headers: X-Api-Key → X-Api-Key (value changed)",
      "secret: (value changed)",
      "reason: disabled by an admin",
      "description: was gone",
    ]);
    expect(describeDiff(undefined)).toEqual([]);
  });
});

describe("webhook health", () => {
  const healthy = { enabled: true, consecutiveFailures: 0, circuitOpenUntil: undefined, disabledReason: "" };
  it("tells failing and disabled webhooks from healthy ones", () => {
    expect(webhookHealth(healthy)).toBe("ok");
    expect(webhookHealth({ ...healthy, consecutiveFailures: 2 })).toBe("failing");
    expect(webhookHealth({ ...healthy, circuitOpenUntil: timestampFromDate(new Date()) })).toBe("failing");
    expect(webhookHealth({ ...healthy, enabled: false, consecutiveFailures: 3 })).toBe("disabled");
  });
  it("counts failing endpoints, not webhooks an admin simply turned off", () => {
    expect(
      failingCount([
        healthy,
        { ...healthy, consecutiveFailures: 1 },
        { ...healthy, enabled: false, disabledReason: "endpoint answered 410 Gone at 2025-06-01T12:00:04Z" },
        { ...healthy, enabled: false, disabledReason: "disabled by an admin" },
      ]),
    ).toBe(2);
  });
});
