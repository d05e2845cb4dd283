// A delivery's details: its payload and every attempt's request (URL, headers, body) and
// response (status, headers, body), duration and error. Resend asks for confirmation; the new
// attempt appears by itself, from WatchDeliveries.

import { useCallback, useEffect, useRef, useState } from "react";
import { admin } from "../api";
import { Body, ConfirmDialog, ErrorBanner, HeadersTable, StatusBadge, Time, useNotify } from "../components";
import { describeError, type Problem } from "../errors";
import { errorKindLabel, formatDuration, functionLabel, httpStatusText, triggerLabel } from "../format";
import type { Delivery, DeliveryAttempt, DeliveryUpdate } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/delivery_pb";
import { href } from "../route";
import { LiveLabel, useDeliveryWatch } from "../watch";

export function DeliveryView({ webhookId, deliveryId }: { webhookId: string; deliveryId: string }) {
  const notify = useNotify();
  const [delivery, setDelivery] = useState<Delivery | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [confirming, setConfirming] = useState(false);
  const seq = useRef(0);

  const load = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const d = await admin.getDelivery({ id: deliveryId });
      if (mine === seq.current) {
        setDelivery(d);
        setProblem(null);
      }
    } catch (err) {
      if (mine === seq.current) setProblem(describeError(err));
    }
  }, [deliveryId]);

  useEffect(() => {
    void load();
  }, [load]);

  // Any update of this delivery (a new attempt, a status change) reloads it with its attempts.
  const onUpdate = useCallback(
    (u: DeliveryUpdate) => {
      if (u.delivery?.id === deliveryId) void load();
    },
    [deliveryId, load],
  );
  const watch = useDeliveryWatch({ webhookId }, onUpdate, load);

  const attempts = delivery ? [...delivery.attempts].reverse() : [];

  return (
    <section aria-labelledby="delivery-title">
      <p className="crumbs">
        <a href={href({ name: "list" })}>Webhooks</a> / <a href={href({ name: "history", id: webhookId })}>History</a> /
      </p>
      <div className="page-head">
        <h1 id="delivery-title" tabIndex={-1}>
          Delivery details
        </h1>
        <div className="page-head__actions">
          <span className={`live live--${watch.state}`} aria-live="polite">
            {LiveLabel(watch.state)}
          </span>
          <button type="button" className="button button--primary" onClick={() => setConfirming(true)} disabled={!delivery}>
            Resend
          </button>
        </div>
      </div>
      <ErrorBanner problem={problem ?? watch.problem} />
      {!delivery ? (
        !problem && (
          <p className="muted" role="status">
            Loading…
          </p>
        )
      ) : (
        <>
          <dl className="summary" aria-label="Delivery">
            <div>
              <dt>Status</dt>
              <dd data-testid="delivery-status">
                <StatusBadge status={delivery.status} />
                {delivery.statusReason && <span className="muted small"> {delivery.statusReason}</span>}
              </dd>
            </div>
            <div>
              <dt>Event type</dt>
              <dd className="mono">{delivery.eventType}</dd>
            </div>
            <div>
              <dt>Request id</dt>
              <dd className="mono break">{delivery.requestId || "—"}</dd>
            </div>
            <div>
              <dt>Function</dt>
              <dd>{functionLabel(delivery.function)}</dd>
            </div>
            <div>
              <dt>Attempts</dt>
              <dd data-testid="attempt-count">{delivery.attemptCount}</dd>
            </div>
            <div>
              <dt>Last response</dt>
              <dd>{delivery.attemptCount > 0 ? httpStatusText(delivery.lastResponseStatus) : "—"}</dd>
            </div>
            <div>
              <dt>Created</dt>
              <dd>
                <Time value={delivery.createdAt} />
              </dd>
            </div>
            <div>
              <dt>Updated</dt>
              <dd>
                <Time value={delivery.updatedAt} />
              </dd>
            </div>
            {delivery.nextAttemptAt && (
              <div>
                <dt>Next attempt</dt>
                <dd>
                  <Time value={delivery.nextAttemptAt} />
                </dd>
              </div>
            )}
            <div>
              <dt>webhook-id</dt>
              <dd className="mono break">{delivery.messageId}</dd>
            </div>
          </dl>

          <h2>Payload</h2>
          <Body text={delivery.payload} label="JSON body sent on every attempt" />

          <h2>
            Attempts <span className="muted">({delivery.attempts.length}, newest first)</span>
          </h2>
          {attempts.length === 0 ? (
            <p className="muted">No attempt yet.</p>
          ) : (
            <ol className="attempts" reversed>
              {attempts.map((a, i) => (
                <AttemptView key={a.id} attempt={a} open={i === 0} />
              ))}
            </ol>
          )}
        </>
      )}

      <ConfirmDialog
        open={confirming}
        title="Resend this delivery?"
        confirmLabel="Confirm"
        onCancel={() => setConfirming(false)}
        onConfirm={async () => {
          const d = await admin.resendDelivery({ id: deliveryId });
          setDelivery((prev) => (prev ? { ...d, attempts: prev.attempts } : prev));
          setConfirming(false);
          notify("Resent: the new attempt appears below as soon as it is made.");
        }}
      >
        <p>
          The delivery is sent again now to the webhook's destination, as a new attempt with the same{" "}
          <code>webhook-id</code> ({delivery?.messageId}). Receivers that drop duplicates will ignore it if they already
          processed it.
        </p>
      </ConfirmDialog>
    </section>
  );
}

function AttemptView({ attempt: a, open }: { attempt: DeliveryAttempt; open: boolean }) {
  const outcome = a.succeeded
    ? httpStatusText(a.responseStatus)
    : a.responseStatus
      ? httpStatusText(a.responseStatus)
      : errorKindLabel(a.errorKind) || "Failed";
  return (
    <li className="attempt" data-attempt={a.attemptNumber}>
      <details open={open}>
        <summary>
          <span className="attempt__title">
            Attempt {a.attemptNumber} · {triggerLabel(a.trigger)}
          </span>{" "}
          <span className={`badge badge--${a.succeeded ? "ok" : "bad"}`}>{outcome}</span>{" "}
          <span className="muted">
            {formatDuration(a.duration)} · <Time value={a.startedAt} />
          </span>
        </summary>
        <div className="attempt__body">
          {(a.errorMessage || errorKindLabel(a.errorKind)) && !a.succeeded && (
            <p className="banner banner--warn">
              <strong>{errorKindLabel(a.errorKind) || "Error"}:</strong> {a.errorMessage}
            </p>
          )}
          <div className="attempt__cols">
            <section aria-label={`Request of attempt ${a.attemptNumber}`}>
              <h3>Request</h3>
              <p>
                <span className="badge badge--muted">POST</span> <span className="mono break">{a.requestUrl}</span>
              </p>
              <HeadersTable headers={a.requestHeaders} caption="Request headers" />
              <Body text={a.requestBody} label="Request body" />
            </section>
            <section aria-label={`Response of attempt ${a.attemptNumber}`}>
              <h3>Response</h3>
              <p data-testid="response-status">
                Status: <strong>{a.responseStatus ? httpStatusText(a.responseStatus) : "no response"}</strong> · took{" "}
                {formatDuration(a.duration)}
              </p>
              <HeadersTable headers={a.responseHeaders} caption="Response headers" />
              <Body text={a.responseBody} label="Response body" truncated={a.responseBodyTruncated} />
            </section>
          </div>
        </div>
      </details>
    </li>
  );
}
