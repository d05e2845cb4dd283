// Small building blocks shared by the screens.

import { createContext, useContext, useEffect, useId, useRef, useState, type ReactNode } from "react";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { HttpHeader } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/delivery_pb";
import type { DeliveryStatus, Webhook } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb";
import {
  deliveryStatusInfo,
  formatSize,
  formatTime,
  isLargeBody,
  isoTime,
  prettyBody,
  webhookHealth,
} from "./format";
import { Code, describeError, type Problem } from "./errors";

/**
 * A problem from the API, announced to screen readers. With `onReload`, an ABORTED problem (the
 * webhook changed since it was read) offers a Reload button that fetches the current version.
 */
export function ErrorBanner({
  problem,
  onReload,
}: {
  problem: Problem | null | undefined;
  onReload?: () => void;
}) {
  if (!problem) return null;
  return (
    <div className="banner banner--error" role="alert">
      {problem.message}
      {onReload && problem.code === Code.Aborted && (
        <>
          {" "}
          <button type="button" className="button" onClick={onReload}>
            Reload
          </button>
        </>
      )}
    </div>
  );
}

export function StatusBadge({ status }: { status: DeliveryStatus }) {
  const info = deliveryStatusInfo(status);
  return <span className={`badge badge--${info.tone}`}>{info.label}</span>;
}

/** A timestamp in the user's time zone, with the exact instant as machine-readable text. */
export function Time({ value }: { value: Timestamp | undefined }) {
  if (!value) return <span>—</span>;
  return <time dateTime={isoTime(value)}>{formatTime(value)}</time>;
}

/** A modal <dialog>: focus moves into it, Escape cancels, focus returns to the opener on close. */
export function Dialog({
  open,
  title,
  onClose,
  children,
  className,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ReactNode;
  className?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<Element | null>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      opener.current = document.activeElement;
      dialog.showModal();
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open]);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const onDialogClose = () => {
      const back = opener.current;
      if (back instanceof HTMLElement && back.isConnected) back.focus();
      onClose();
    };
    dialog.addEventListener("close", onDialogClose);
    return () => dialog.removeEventListener("close", onDialogClose);
  }, [onClose]);
  return (
    <dialog ref={ref} className={`dialog ${className ?? ""}`} aria-labelledby={titleId}>
      {open && (
        <>
          <h2 id={titleId} className="dialog__title">
            {title}
          </h2>
          {children}
        </>
      )}
    </dialog>
  );
}

/**
 * "Are you sure?": Cancel (focused first, so Enter does not confirm by accident) and a confirm
 * button. Errors of the action are shown inside the dialog.
 */
export function ConfirmDialog({
  open,
  title,
  confirmLabel,
  danger,
  onConfirm,
  onCancel,
  children,
}: {
  open: boolean;
  title: string;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<void>;
  onCancel: () => void;
  children: ReactNode;
}) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (open) {
      setProblem(null);
      setBusy(false);
      cancelRef.current?.focus();
    }
  }, [open]);
  const confirm = async () => {
    setBusy(true);
    setProblem(null);
    try {
      await onConfirm();
    } catch (err) {
      setProblem(describeError(err));
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} title={title} onClose={onCancel}>
      <div className="dialog__body">{children}</div>
      <ErrorBanner problem={problem} />
      <div className="dialog__actions">
        <button type="button" ref={cancelRef} className="button" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
        <button
          type="button"
          className={`button ${danger ? "button--danger" : "button--primary"}`}
          onClick={confirm}
          disabled={busy}
        >
          {busy ? "Working…" : confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

/** A secret shown once, with a Copy button. */
export function SecretReveal({ secret, label }: { secret: string; label: string }) {
  const [copied, setCopied] = useState<"" | "copied" | "failed">("");
  const inputId = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(secret);
      } else {
        inputRef.current?.select();
        if (!document.execCommand("copy")) throw new Error("copy refused");
      }
      setCopied("copied");
    } catch {
      inputRef.current?.select();
      setCopied("failed");
    }
  };
  return (
    <div className="secret">
      <label htmlFor={inputId}>{label}</label>
      <div className="secret__row">
        <input
          id={inputId}
          ref={inputRef}
          className="input input--mono"
          readOnly
          value={secret}
          onFocus={(e) => e.currentTarget.select()}
          data-testid="secret-value"
        />
        <button type="button" className="button button--primary" onClick={copy}>
          Copy
        </button>
      </div>
      <p className="hint" role="status">
        {copied === "copied" && "Copied to the clipboard."}
        {copied === "failed" && "Could not copy: the secret is selected, press Ctrl+C (⌘C)."}
        {copied === "" && "It is shown only now: store it where the receiver can read it."}
      </p>
    </div>
  );
}

/** A request or response body, pretty-printed; large ones start collapsed. */
export function Body({ text, label, truncated }: { text: string; label: string; truncated?: boolean }) {
  if (!text) return <p className="muted">{label}: empty</p>;
  const large = isLargeBody(text);
  return (
    <details className="body" open={!large}>
      <summary>
        {label} ({formatSize(text)}
        {truncated ? ", cut at the capture limit" : ""}){large ? " — large, click to expand" : ""}
      </summary>
      <pre className="code" tabIndex={0}>
        {prettyBody(text)}
      </pre>
    </details>
  );
}

export function HeadersTable({ headers, caption }: { headers: readonly HttpHeader[]; caption: string }) {
  if (headers.length === 0) return <p className="muted">{caption}: none</p>;
  return (
    <table className="kv">
      <caption>{caption}</caption>
      <tbody>
        {headers.map((h, i) => (
          <tr key={`${h.name}-${i}`}>
            <th scope="row">{h.name}</th>
            <td className="mono break">{h.value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Short-lived messages ("Test event sent"), announced politely. */
export interface Notice {
  id: number;
  text: string;
  link?: { href: string; label: string };
}

export const NoticeContext = createContext<(text: string, link?: Notice["link"]) => void>(() => {});

export function useNotify() {
  return useContext(NoticeContext);
}

export function Notices({ notices, dismiss }: { notices: Notice[]; dismiss: (id: number) => void }) {
  return (
    <div className="notices" role="status" aria-live="polite">
      {notices.map((n) => (
        <div className="notice" key={n.id}>
          <span>{n.text}</span>
          {n.link && (
            <a href={n.link.href} className="notice__link">
              {n.link.label}
            </a>
          )}
          <button type="button" className="button button--small" onClick={() => dismiss(n.id)} aria-label="Dismiss message">
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

/**
 * The banner of a disabled or failing webhook: why, since when, and the last error, so an admin
 * sees at once what the endpoint did. Nothing for a healthy webhook.
 */
export function WebhookHealthBanner({ webhook }: { webhook: Webhook }) {
  const health = webhookHealth(webhook);
  if (health === "ok") return null;
  const disabled = health === "disabled";
  return (
    <div className={`banner ${disabled ? "banner--error" : "banner--warn"}`} role="status" data-testid="webhook-health">
      <strong>
        {disabled ? "Disabled" : "Failing"}
        {disabled && webhook.disabledAt && (
          <>
            {" "}
            since <Time value={webhook.disabledAt} />
          </>
        )}
        {!disabled && webhook.failingSince && (
          <>
            {" "}
            since <Time value={webhook.failingSince} />
          </>
        )}
      </strong>
      {disabled && <div>Reason: {webhook.disabledReason || "disabled by an admin"}</div>}
      {webhook.consecutiveFailures > 0 && (
        <div>
          {webhook.consecutiveFailures === 1
            ? "1 failed attempt in a row."
            : `${webhook.consecutiveFailures} failed attempts in a row.`}
        </div>
      )}
      {webhook.circuitOpenUntil && (
        <div>
          Circuit open: deliveries wait until <Time value={webhook.circuitOpenUntil} />.
        </div>
      )}
      {webhook.lastError && <div>Last error: {webhook.lastError}</div>}
    </div>
  );
}
