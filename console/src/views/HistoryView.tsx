// "History": a webhook's deliveries, newest first, with filters. WatchDeliveries keeps it live: a
// new delivery appears at the top and a delivery's status changes in place, without a reload.

import { useCallback, useEffect, useId, useRef, useState } from "react";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { admin } from "../api";
import { ConfirmDialog, ErrorBanner, StatusBadge, Time, WebhookHealthBanner, useNotify } from "../components";
import { Code, describeError, type Problem } from "../errors";
import { DELIVERY_STATUSES, deliveryStatusInfo, httpStatusText, summarizeEvents, functionLabel } from "../format";
import type { Delivery, DeliveryUpdate } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/delivery_pb";
import type { DeliveryStatus, Webhook } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb";
import { mergeDeliveries, matchesFilters, type HistoryFilters } from "../history";
import { href } from "../route";
import { LiveLabel, useDeliveryWatch } from "../watch";
import { WebhookTabs } from "./ActivityView";

const NO_FILTERS: HistoryFilters = { status: 0 as DeliveryStatus, eventType: "", requestId: "", from: "", to: "" };

export function HistoryView({ webhookId }: { webhookId: string }) {
  const notify = useNotify();
  const [webhook, setWebhook] = useState<Webhook | null>(null);
  const [webhookGone, setWebhookGone] = useState(false);
  const [draft, setDraft] = useState<HistoryFilters>(NO_FILTERS);
  const [filters, setFilters] = useState<HistoryFilters>(NO_FILTERS);
  const [deliveries, setDeliveries] = useState<Delivery[] | null>(null);
  const [nextPage, setNextPage] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [resending, setResending] = useState<Delivery | null>(null);
  const [testing, setTesting] = useState(false);
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  // Bumped when the filters change, so a page fetched for the old filters is dropped.
  const generation = useRef(0);
  const shownIds = useRef(new Set<string>());
  shownIds.current = new Set(deliveries?.map((d) => d.id));
  const ids = { status: useId(), type: useId(), request: useId(), from: useId(), to: useId() };

  useEffect(() => {
    admin
      .getWebhook({ id: webhookId })
      .then(setWebhook)
      .catch((err) => {
        const p = describeError(err);
        if (p.code === Code.NotFound) setWebhookGone(true);
        else setProblem(p);
      });
  }, [webhookId]);

  const load = useCallback(
    async (pageToken = "") => {
      const f = filtersRef.current;
      const gen = generation.current;
      try {
        const res = await admin.listDeliveries({
          webhookId,
          statuses: f.status ? [f.status] : [],
          eventType: f.eventType.trim(),
          requestId: f.requestId.trim(),
          createdAfter: f.from ? timestampFromDate(new Date(f.from)) : undefined,
          createdBefore: f.to ? timestampFromDate(new Date(f.to)) : undefined,
          pageSize: 50,
          pageToken,
        });
        if (gen !== generation.current) return;
        setDeliveries((prev) => mergeDeliveries(prev ?? [], res.deliveries));
        setNextPage(res.nextPageToken);
        setProblem(null);
      } catch (err) {
        if (gen !== generation.current) return;
        setProblem(describeError(err));
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [webhookId],
  );

  useEffect(() => {
    generation.current += 1;
    setDeliveries(null);
    void load();
  }, [load, filters]);

  const onUpdate = useCallback((u: DeliveryUpdate) => {
    // Webhook-level updates carry the webhook's new state: the health banner follows it live.
    if (u.webhook) setWebhook(u.webhook);
    const d = u.delivery;
    if (!d || !matchesFilters(d, filtersRef.current)) return;
    if (!shownIds.current.has(d.id)) setFresh((s) => new Set(s).add(d.id));
    setDeliveries((prev) => mergeDeliveries(prev ?? [], [d]));
  }, []);
  // When the stream (re)opens, reload so nothing from before it started is missed.
  const onOpen = useCallback(() => void load(), [load]);
  const watch = useDeliveryWatch({ webhookId }, onUpdate, onOpen);

  const sendTest = async () => {
    setTesting(true);
    try {
      await admin.sendTestEvent({ webhookId });
      notify("Test event sent: it appears below.");
    } catch (err) {
      setProblem(describeError(err));
    } finally {
      setTesting(false);
    }
  };

  const filtered = JSON.stringify(filters) !== JSON.stringify(NO_FILTERS);

  return (
    <section aria-labelledby="history-title">
      <p className="crumbs">
        <a href={href({ name: "list" })}>Webhooks</a> /
      </p>
      <div className="page-head">
        <h1 id="history-title" tabIndex={-1}>
          History{webhook ? `: ${webhook.name}` : webhookGone ? " of a deleted webhook" : ""}
        </h1>
        <div className="page-head__actions">
          <span className={`live live--${watch.state}`} aria-live="polite" data-testid="live-state">
            {LiveLabel(watch.state)}
          </span>
          {webhook && (
            <>
              <button
                type="button"
                className="button"
                onClick={sendTest}
                disabled={testing || !webhook.enabled}
                title={webhook.enabled ? undefined : "Enable the webhook to send a test event"}
              >
                Send test event
              </button>
              <a className="button" href={href({ name: "edit", id: webhookId })}>
                Edit
              </a>
            </>
          )}
        </div>
      </div>
      <WebhookTabs id={webhookId} current="history" />
      {webhook && (
        <p className="lead">
          <span className="mono break">{webhook.destinationUrl}</span> · {functionLabel(webhook.function)} ·{" "}
          {summarizeEvents(webhook.events)} · {webhook.enabled ? "Enabled" : "Disabled"}
        </p>
      )}
      {webhook && <WebhookHealthBanner webhook={webhook} />}

      <form
        className="filters"
        aria-label="Filter deliveries"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        <div className="field field--inline">
          <label htmlFor={ids.status}>Status</label>
          <select
            id={ids.status}
            className="input"
            value={draft.status}
            onChange={(e) => {
              const next = { ...draft, status: Number(e.target.value) as DeliveryStatus };
              setDraft(next);
              setFilters(next);
            }}
          >
            <option value={0}>Any status</option>
            {DELIVERY_STATUSES.map((s) => (
              <option key={s} value={s}>
                {deliveryStatusInfo(s).label}
              </option>
            ))}
          </select>
        </div>
        <div className="field field--inline">
          <label htmlFor={ids.type}>Event type</label>
          <input
            id={ids.type}
            className="input"
            list={`${ids.type}-list`}
            placeholder="withdrawal.approved"
            value={draft.eventType}
            onChange={(e) => setDraft({ ...draft, eventType: e.target.value })}
          />
          <datalist id={`${ids.type}-list`}>
            {EVENT_TYPES.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </div>
        <div className="field field--inline">
          <label htmlFor={ids.request}>Request id</label>
          <input
            id={ids.request}
            className="input"
            value={draft.requestId}
            onChange={(e) => setDraft({ ...draft, requestId: e.target.value })}
          />
        </div>
        <div className="field field--inline">
          <label htmlFor={ids.from}>Created from</label>
          <input
            id={ids.from}
            className="input"
            type="datetime-local"
            value={draft.from}
            onChange={(e) => setDraft({ ...draft, from: e.target.value })}
          />
        </div>
        <div className="field field--inline">
          <label htmlFor={ids.to}>Created before</label>
          <input
            id={ids.to}
            className="input"
            type="datetime-local"
            value={draft.to}
            onChange={(e) => setDraft({ ...draft, to: e.target.value })}
          />
        </div>
        <div className="filters__buttons">
          <button type="submit" className="button">
            Apply filters
          </button>
          {filtered && (
            <button
              type="button"
              className="button"
              onClick={() => {
                setDraft(NO_FILTERS);
                setFilters(NO_FILTERS);
              }}
            >
              Clear
            </button>
          )}
        </div>
      </form>

      <ErrorBanner problem={problem ?? watch.problem} />

      {deliveries === null ? (
        !problem && (
          <p className="muted" role="status">
            Loading deliveries…
          </p>
        )
      ) : deliveries.length === 0 ? (
        <p className="empty" role="status">
          {filtered
            ? "No delivery matches these filters."
            : "No deliveries yet. They appear here as soon as a matching decision is published."}
        </p>
      ) : (
        <table className="grid grid--history" aria-label="Deliveries">
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Event type</th>
              <th scope="col">Request id</th>
              <th scope="col">Attempts</th>
              <th scope="col">Last response</th>
              <th scope="col">Time</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {deliveries.map((d) => (
              <tr key={d.id} data-delivery-id={d.id} className={fresh.has(d.id) ? "row--fresh" : undefined}>
                <td data-label="Status">
                  <StatusBadge status={d.status} />
                  {d.statusReason && <div className="muted small">{d.statusReason}</div>}
                </td>
                <td data-label="Event type" className="mono">
                  {d.eventType}
                </td>
                <td data-label="Request id" className="mono break">
                  {d.requestId || "—"}
                </td>
                <td data-label="Attempts">{d.attemptCount}</td>
                <td data-label="Last response">{d.attemptCount > 0 ? httpStatusText(d.lastResponseStatus) : "—"}</td>
                <td data-label="Time">
                  <Time value={d.createdAt} />
                </td>
                <td data-label="Actions" className="row-actions">
                  <a
                    className="button button--small"
                    href={href({ name: "delivery", webhookId, id: d.id })}
                    aria-label={`Details of ${d.eventType} delivery for ${d.requestId || d.id}`}
                  >
                    Details
                  </a>
                  <button
                    type="button"
                    className="button button--small"
                    onClick={() => setResending(d)}
                    aria-label={`Resend ${d.eventType} delivery for ${d.requestId || d.id}`}
                  >
                    Resend
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {nextPage && (
        <button type="button" className="button" onClick={() => load(nextPage)}>
          Load older deliveries
        </button>
      )}

      <ConfirmDialog
        open={resending !== null}
        title="Resend this delivery?"
        confirmLabel="Confirm"
        onCancel={() => setResending(null)}
        onConfirm={async () => {
          const d = resending!;
          await admin.resendDelivery({ id: d.id });
          setResending(null);
          notify("Resent: a new attempt is on its way.", {
            href: href({ name: "delivery", webhookId, id: d.id }),
            label: "View details",
          });
        }}
      >
        <p>
          The <span className="mono">{resending?.eventType}</span> delivery
          {resending?.requestId ? (
            <>
              {" "}
              about request <span className="mono">{resending.requestId}</span>
            </>
          ) : null}{" "}
          is sent again now, as a new attempt with the same <code>webhook-id</code>.
        </p>
      </ConfirmDialog>
    </section>
  );
}

const EVENT_TYPES = [
  "withdrawal.approved",
  "withdrawal.rejected",
  "prop_trading.participation.approved",
  "prop_trading.participation.rejected",
  "prop_trading.live_stage.approved",
  "prop_trading.live_stage.rejected",
  "webhook.test",
];
