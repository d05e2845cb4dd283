// "Activity": the audit trail, newest first: who did what, when, from where, with the field-level
// diff. The whole trail from the nav, or one webhook's rows from its Activity tab.

import { useCallback, useEffect, useState } from "react";
import { admin } from "../api";
import { ErrorBanner, Time } from "../components";
import { describeError, type Problem } from "../errors";
import { describeDiff } from "../format";
import type { AuditEvent } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/audit_pb";
import { href } from "../route";

/** The tabs of a webhook's pages: its delivery history and its activity. */
export function WebhookTabs({ id, current }: { id: string; current: "history" | "activity" }) {
  return (
    <nav className="tabs" aria-label="Webhook">
      <a href={href({ name: "history", id })} aria-current={current === "history" ? "page" : undefined}>
        History
      </a>
      <a href={href({ name: "webhook-activity", id })} aria-current={current === "activity" ? "page" : undefined}>
        Activity
      </a>
    </nav>
  );
}

export function ActivityView({ webhookId }: { webhookId?: string }) {
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [nextPage, setNextPage] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [name, setName] = useState("");

  const load = useCallback(
    async (pageToken = "") => {
      try {
        const res = await admin.listAuditEvents({
          targetKind: webhookId ? "webhook" : "",
          targetId: webhookId ?? "",
          pageSize: 50,
          pageToken,
        });
        setEvents((prev) => [...(pageToken ? (prev ?? []) : []), ...res.auditEvents]);
        setNextPage(res.nextPageToken);
        setProblem(null);
      } catch (err) {
        setProblem(describeError(err));
      }
    },
    [webhookId],
  );

  useEffect(() => {
    void load();
    if (webhookId) {
      admin
        .getWebhook({ id: webhookId })
        .then((w) => setName(w.name))
        .catch(() => setName(""));
    }
  }, [load, webhookId]);

  return (
    <section aria-labelledby="activity-title">
      {webhookId && (
        <p className="crumbs">
          <a href={href({ name: "list" })}>Webhooks</a> /
        </p>
      )}
      <div className="page-head">
        <h1 id="activity-title" tabIndex={-1}>
          Activity{name ? `: ${name}` : ""}
        </h1>
      </div>
      {webhookId && <WebhookTabs id={webhookId} current="activity" />}
      <p className="lead">
        Who changed what, and what the service did on its own (actor <code>system</code>). Every row is written with its
        change and chained by SHA-256: <code>webhooks audit verify</code> checks the chain.
      </p>
      <ErrorBanner problem={problem} />
      {events && events.length === 0 && <p>No activity yet.</p>}
      {events && events.length > 0 && (
        <table className="grid grid--activity" aria-label="Activity">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              {!webhookId && <th scope="col">Target</th>}
              <th scope="col">Changes</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={String(e.id)} data-audit-id={String(e.id)}>
                <td data-label="Time">
                  <Time value={e.time} />
                </td>
                <td data-label="Who">
                  <span className="mono">{e.actor}</span> <span className="muted">({e.role})</span>
                  {e.peer && <div className="muted small">{`${e.peer} · ${e.userAgent}`}</div>}
                </td>
                <td data-label="Action" className="mono">
                  {e.action}
                </td>
                {!webhookId && (
                  <td data-label="Target">
                    {e.targetKind === "webhook" && e.targetId ? (
                      <a className="mono break" href={href({ name: "webhook-activity", id: e.targetId })}>
                        {e.targetId}
                      </a>
                    ) : (
                      <span className="mono break">{`${e.targetKind} ${e.targetId}`.trim()}</span>
                    )}
                  </td>
                )}
                <td data-label="Changes">
                  <ul className="diff">
                    {describeDiff(e.diff as Record<string, unknown> | undefined).map((line) => (
                      <li key={line} className="break">
                        {line}
                      </li>
                    ))}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {nextPage && (
        <div className="actions">
          <button type="button" className="button" onClick={() => void load(nextPage)}>
            Load older activity
          </button>
        </div>
      )}
    </section>
  );
}
