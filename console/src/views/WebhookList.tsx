// The webhook list: every webhook with its destination, function, events, state and last
// delivery outcome; filters by function and state; the per-webhook actions of the seed (Edit,
// History, Disable/Enable, Delete) plus Send test event and Rotate secret.

import { useCallback, useEffect, useId, useState } from "react";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { admin } from "../api";
import { ConfirmDialog, Dialog, ErrorBanner, SecretReveal, StatusBadge, Time, useNotify } from "../components";
import { describeError, type Problem } from "../errors";
import { FUNCTIONS, failingCount, functionLabel, summarizeEvents, webhookHealth } from "../format";
import type { DeliveryUpdate } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/delivery_pb";
import { Function as WebhookFunction, type Webhook } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb";
import { href } from "../route";
import { LiveLabel, useDeliveryWatch } from "../watch";

type StateFilter = "all" | "enabled" | "disabled";

const GRACE_PERIODS: { label: string; ms: number }[] = [
  { label: "None: only the new secret signs", ms: 0 },
  { label: "1 hour", ms: 3_600_000 },
  { label: "24 hours (default)", ms: 86_400_000 },
  { label: "7 days", ms: 7 * 86_400_000 },
];

export function WebhookList() {
  const notify = useNotify();
  const [fn, setFn] = useState<WebhookFunction>(WebhookFunction.UNSPECIFIED);
  const [stateFilter, setStateFilter] = useState<StateFilter>("all");
  const [webhooks, setWebhooks] = useState<Webhook[] | null>(null);
  const [nextPage, setNextPage] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState<string>("");
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const [rotating, setRotating] = useState<Webhook | null>(null);
  const [grace, setGrace] = useState(86_400_000);
  const [rotated, setRotated] = useState<{ name: string; secret: string } | null>(null);
  const fnId = useId();
  const stateId = useId();
  const graceId = useId();

  const load = useCallback(
    async (pageToken = "") => {
      try {
        const res = await admin.listWebhooks({
          pageSize: 100,
          pageToken,
          function: fn,
          enabled: stateFilter === "all" ? undefined : stateFilter === "enabled",
        });
        setWebhooks((prev) => (pageToken && prev ? [...prev, ...res.webhooks] : res.webhooks));
        setNextPage(res.nextPageToken);
        setProblem(null);
      } catch (err) {
        setProblem(describeError(err));
        // What is shown no longer matches the filters.
        if (!pageToken) setWebhooks(null);
      }
    },
    [fn, stateFilter],
  );

  useEffect(() => {
    void load();
  }, [load]);

  // The last delivery outcome follows the delivery log live, and a webhook's health follows its
  // webhook-level updates (disabled, circuit opened or closed).
  const onUpdate = useCallback((u: DeliveryUpdate) => {
    const changed = u.webhook;
    if (changed) setWebhooks((all) => all?.map((w) => (w.id === changed.id ? changed : w)) ?? all);
    const d = u.delivery;
    if (!d) return;
    setWebhooks((all) =>
      all
        ? all.map((w) =>
            w.id === d.webhookId ? { ...w, lastDeliveryStatus: d.status, lastDeliveryAt: d.updatedAt ?? d.createdAt } : w,
          )
        : all,
    );
  }, []);
  const watch = useDeliveryWatch({}, onUpdate);

  const replace = (w: Webhook) => setWebhooks((all) => all?.map((x) => (x.id === w.id ? w : x)) ?? all);

  const toggle = async (w: Webhook) => {
    setBusy(w.id);
    try {
      const updated = await admin.setWebhookEnabled({ id: w.id, enabled: !w.enabled, etag: w.etag });
      replace(updated);
      notify(`${updated.name} is now ${updated.enabled ? "enabled" : "disabled"}.`);
      setProblem(null);
    } catch (err) {
      setProblem(describeError(err));
    } finally {
      setBusy("");
    }
  };

  const sendTest = async (w: Webhook) => {
    setBusy(w.id);
    try {
      const delivery = await admin.sendTestEvent({ webhookId: w.id });
      notify(`Test event sent to ${w.name}.`, {
        href: href({ name: "delivery", webhookId: w.id, id: delivery.id }),
        label: "View delivery",
      });
      setProblem(null);
    } catch (err) {
      setProblem(describeError(err));
    } finally {
      setBusy("");
    }
  };

  const filtered = fn !== WebhookFunction.UNSPECIFIED || stateFilter !== "all";

  return (
    <section aria-labelledby="list-title">
      <div className="page-head">
        <h1 id="list-title" tabIndex={-1}>
          Webhooks
        </h1>
        <div className="page-head__actions">
          <a className="button" href={href({ name: "docs" })} target="_blank" rel="noopener">
            Learn More<span className="visually-hidden"> about receiving webhooks (opens in a new tab)</span>
          </a>
          <a className="button button--primary" href={href({ name: "new" })}>
            Create Webhook
          </a>
        </div>
      </div>
      <p className="lead">
        Each webhook POSTs a signed JSON body to its destination URL when a request of its function gets one of its
        selected decisions.
      </p>

      <form className="filters" aria-label="Filter webhooks" onSubmit={(e) => e.preventDefault()}>
        <div className="field field--inline">
          <label htmlFor={fnId}>Function</label>
          <select
            id={fnId}
            className="input"
            value={fn}
            onChange={(e) => setFn(Number(e.target.value) as WebhookFunction)}
          >
            <option value={WebhookFunction.UNSPECIFIED}>All functions</option>
            {FUNCTIONS.map((f) => (
              <option key={f} value={f}>
                {functionLabel(f)}
              </option>
            ))}
          </select>
        </div>
        <div className="field field--inline">
          <label htmlFor={stateId}>State</label>
          <select
            id={stateId}
            className="input"
            value={stateFilter}
            onChange={(e) => setStateFilter(e.target.value as StateFilter)}
          >
            <option value="all">Enabled and disabled</option>
            <option value="enabled">Enabled</option>
            <option value="disabled">Disabled</option>
          </select>
        </div>
        <span className={`live live--${watch.state}`} aria-live="polite">
          {LiveLabel(watch.state)}
        </span>
      </form>

      <ErrorBanner problem={problem} onReload={() => void load()} />

      {webhooks !== null && failingCount(webhooks) > 0 && (
        <p className="banner banner--warn" role="status" data-testid="failing-count">
          {failingCount(webhooks) === 1 ? "1 failing endpoint" : `${failingCount(webhooks)} failing endpoints`}:
          disabled by the service or failing attempts in a row. Open a webhook&apos;s History for the details.
        </p>
      )}

      {webhooks === null ? (
        !problem && (
          <p className="muted" role="status">
            Loading webhooks…
          </p>
        )
      ) : webhooks.length === 0 ? (
        <p className="empty" role="status">
          {filtered ? "No webhook matches these filters." : "No webhooks yet: create one to start receiving decisions."}
        </p>
      ) : (
        <table className="grid grid--webhooks" aria-label="Webhooks">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Destination</th>
              <th scope="col">Function</th>
              <th scope="col">Events</th>
              <th scope="col">State</th>
              <th scope="col">Last delivery</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {webhooks.map((w) => (
              <tr key={w.id} data-webhook-id={w.id}>
                <td data-label="Name">
                  <strong className="break">{w.name}</strong>
                  {w.description && <div className="muted small">{w.description}</div>}
                </td>
                <td data-label="Destination" className="mono break">
                  {w.destinationUrl}
                </td>
                <td data-label="Function">{functionLabel(w.function)}</td>
                <td data-label="Events">
                  {summarizeEvents(w.events)}
                  {w.deliverOncePerRequest && <div className="muted small">First matching event per request only</div>}
                </td>
                <td data-label="State">
                  <button
                    type="button"
                    role="switch"
                    aria-checked={w.enabled}
                    aria-label={`${w.name} enabled`}
                    className={`switch ${w.enabled ? "switch--on" : ""}`}
                    disabled={busy === w.id}
                    onClick={() => toggle(w)}
                  >
                    <span className="switch__track" aria-hidden="true">
                      <span className="switch__thumb" />
                    </span>
                    <span className="switch__text">{w.enabled ? "Enabled" : "Disabled"}</span>
                  </button>
                  {!w.enabled && w.disabledReason && <div className="muted small">{w.disabledReason}</div>}
                  {webhookHealth(w) === "failing" && (
                    <div className="small" data-testid="failing">
                      <span className="badge badge--warn">Failing</span> {w.lastError}
                    </div>
                  )}
                </td>
                <td data-label="Last delivery">
                  <StatusBadge status={w.lastDeliveryStatus} />
                  {w.lastDeliveryAt && (
                    <div className="muted small">
                      <Time value={w.lastDeliveryAt} />
                    </div>
                  )}
                </td>
                <td data-label="Actions" className="row-actions">
                  <a className="button button--small" href={href({ name: "edit", id: w.id })} aria-label={`Edit ${w.name}`}>
                    Edit
                  </a>
                  <a
                    className="button button--small"
                    href={href({ name: "history", id: w.id })}
                    aria-label={`History of ${w.name}`}
                  >
                    History
                  </a>
                  <button
                    type="button"
                    className="button button--small"
                    onClick={() => sendTest(w)}
                    disabled={busy === w.id || !w.enabled}
                    aria-label={`Send test event to ${w.name}`}
                    title={w.enabled ? undefined : "Enable the webhook to send a test event"}
                  >
                    Send test
                  </button>
                  <button
                    type="button"
                    className="button button--small"
                    onClick={() => {
                      setGrace(86_400_000);
                      setRotating(w);
                    }}
                    aria-label={`Rotate secret of ${w.name}`}
                  >
                    Rotate secret
                  </button>
                  <button
                    type="button"
                    className="button button--small button--danger"
                    onClick={() => setDeleting(w)}
                    aria-label={`Delete ${w.name}`}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {nextPage && (
        <button type="button" className="button" onClick={() => load(nextPage)}>
          Load more
        </button>
      )}

      <ConfirmDialog
        open={deleting !== null}
        title="Delete webhook?"
        confirmLabel="Confirm"
        danger
        onCancel={() => setDeleting(null)}
        onConfirm={async () => {
          const w = deleting!;
          await admin.deleteWebhook({ id: w.id, etag: w.etag });
          setWebhooks((all) => all?.filter((x) => x.id !== w.id) ?? all);
          setDeleting(null);
          notify(`${w.name} was deleted.`);
        }}
      >
        <p>
          Delete <strong>{deleting?.name}</strong>? It stops receiving events at once and its pending deliveries are
          cancelled. Its delivery history is kept.
        </p>
      </ConfirmDialog>

      <ConfirmDialog
        open={rotating !== null}
        title="Rotate the signing secret?"
        confirmLabel="Rotate secret"
        onCancel={() => setRotating(null)}
        onConfirm={async () => {
          const w = rotating!;
          const res = await admin.rotateWebhookSecret({ id: w.id, gracePeriod: durationFromMs(grace) });
          if (res.webhook) replace(res.webhook);
          setRotating(null);
          setRotated({ name: w.name, secret: res.secret });
        }}
      >
        <p>
          A new secret is generated for <strong>{rotating?.name}</strong>. During the grace period each delivery is signed
          with both the new and the old secret, so the receiver can switch without losing any.
        </p>
        <div className="field">
          <label htmlFor={graceId}>Grace period</label>
          <select id={graceId} className="input" value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
            {GRACE_PERIODS.map((g) => (
              <option key={g.ms} value={g.ms}>
                {g.label}
              </option>
            ))}
          </select>
        </div>
      </ConfirmDialog>

      <Dialog open={rotated !== null} title="New signing secret" onClose={() => setRotated(null)}>
        {rotated && (
          <>
            <p>
              The new secret of <strong>{rotated.name}</strong>:
            </p>
            <SecretReveal secret={rotated.secret} label="Secret key" />
            <div className="dialog__actions">
              <button type="button" className="button button--primary" onClick={() => setRotated(null)}>
                Done
              </button>
            </div>
          </>
        )}
      </Dialog>
    </section>
  );
}
