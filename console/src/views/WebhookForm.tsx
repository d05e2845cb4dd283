// "Create Webhook" and "Edit": Name, Destination URL, Select Function, Select Event (approval
// nodes and Reject), Secret Key (create only), first-matching-event-only, a description, and the
// destination's own credentials (request headers, client certificate, private CA). The service
// validates: its INVALID_ARGUMENT field violations are shown next to the fields. Header values,
// keys and certificates are never read back: an edit shows hints, and an empty value keeps what
// is stored.

import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { admin } from "../api";
import { ErrorBanner, SecretReveal } from "../components";
import { describeError, formFieldOf, type Problem } from "../errors";
import {
  credentialPaths,
  formatTime,
  FUNCTIONS,
  functionLabel,
  functionNoun,
  generateSecret,
  normalizeNodes,
  visibleNodeCount,
} from "../format";
import { Function as WebhookFunction, type Webhook } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb";
import { href, navigate } from "../route";

/** One row of the request headers: `hint` shows the stored value's hint when editing. */
interface HeaderRow {
  name: string;
  value: string;
  hint: string;
}

interface Values {
  headers: HeaderRow[];
  clientCertPem: string;
  clientKeyPem: string;
  removeClientCert: boolean;
  serverCaPem: string;
  removeServerCa: boolean;
  name: string;
  destinationUrl: string;
  function: WebhookFunction;
  nodes: number[];
  rejection: boolean;
  secret: string;
  deliverOncePerRequest: boolean;
  description: string;
}

const EMPTY: Values = {
  headers: [],
  clientCertPem: "",
  clientKeyPem: "",
  removeClientCert: false,
  serverCaPem: "",
  removeServerCa: false,
  name: "",
  destinationUrl: "",
  function: WebhookFunction.UNSPECIFIED,
  nodes: [],
  rejection: false,
  secret: "",
  deliverOncePerRequest: false,
  description: "",
};

/** The API field (as named in its errors) each form value sets. */
const FIELD_OF: Record<keyof Values, string> = {
  headers: "headers",
  clientCertPem: "client_certificate_pem",
  clientKeyPem: "client_key_pem",
  removeClientCert: "client_certificate_pem",
  serverCaPem: "server_ca_pem",
  removeServerCa: "server_ca_pem",
  name: "name",
  destinationUrl: "destination_url",
  function: "function",
  nodes: "events",
  rejection: "events",
  secret: "secret",
  deliverOncePerRequest: "deliver_once_per_request",
  description: "description",
};

/** The highest approver level the API accepts. */
const MAX_NODE = 1000;

export function WebhookForm({ id }: { id?: string }) {
  const editing = id !== undefined;
  const [values, setValues] = useState<Values>(EMPTY);
  const [original, setOriginal] = useState<Webhook | null>(null);
  const [shownNodes, setShownNodes] = useState(3);
  const [loading, setLoading] = useState(editing);
  const [saving, setSaving] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [created, setCreated] = useState<{ webhook: Webhook; secret: string } | null>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const focusNode = useRef<number | null>(null);
  const ids = {
    name: useId(),
    destination: useId(),
    fn: useId(),
    secret: useId(),
    description: useId(),
    once: useId(),
    events: useId(),
    headers: useId(),
    clientCert: useId(),
    clientKey: useId(),
    serverCa: useId(),
  };

  // After a refusal: the first field the service refused, or (none: a stale etag, an unreachable
  // service) the banner at the top of the form, on its Reload button when it has one. A new
  // object each time, so the same target is focused again after another refusal.
  const [focusTarget, setFocusTarget] = useState<{ field?: string } | null>(null);
  useEffect(() => {
    if (!focusTarget) return;
    const form = formRef.current;
    if (focusTarget.field) {
      form?.querySelector<HTMLElement>(`[data-field="${focusTarget.field}"]`)?.focus();
      return;
    }
    const reload = form?.querySelector<HTMLElement>('[role="alert"] button');
    if (reload) reload.focus();
    else form?.querySelector('[role="alert"]')?.scrollIntoView();
  }, [focusTarget]);

  // Bumped by "Reload" after the webhook changed behind this form: loads the current version.
  const [loadCount, setLoadCount] = useState(0);
  useEffect(() => {
    if (!id) return;
    let live = true;
    setProblem(null);
    admin
      .getWebhook({ id })
      .then((w) => {
        if (!live) return;
        setOriginal(w);
        const nodes = normalizeNodes(w.events?.approvalNodes ?? []);
        setValues({
          ...EMPTY,
          headers: w.headers.map((h) => ({ name: h.name, value: "", hint: h.valueHint })),
          name: w.name,
          destinationUrl: w.destinationUrl,
          function: w.function,
          nodes,
          rejection: w.events?.rejection ?? false,
          secret: "",
          deliverOncePerRequest: w.deliverOncePerRequest,
          description: w.description,
        });
        setShownNodes(visibleNodeCount(nodes));
      })
      .catch((err) => live && setProblem(describeError(err)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [id, loadCount]);

  // After "Add node", move focus to the new checkbox.
  useEffect(() => {
    if (focusNode.current !== null) {
      formRef.current?.querySelector<HTMLInputElement>(`input[data-node="${focusNode.current}"]`)?.focus();
      focusNode.current = null;
    }
  }, [shownNodes]);

  // Editing a field clears the error the service gave for it.
  const clearError = (field: string) =>
    setFieldErrors((errors) => {
      if (!(field in errors)) return errors;
      const rest = { ...errors };
      delete rest[field];
      if (Object.keys(rest).length === 0) setProblem(null);
      return rest;
    });
  const set = <K extends keyof Values>(key: K, value: Values[K]) => {
    setValues((v) => ({ ...v, [key]: value }));
    clearError(FIELD_OF[key]);
  };
  const toggleNode = (n: number, on: boolean) => {
    setValues((v) => ({ ...v, nodes: normalizeNodes(on ? [...v.nodes, n] : v.nodes.filter((x) => x !== n)) }));
    clearError("events");
  };

  const submit = async () => {
    setSaving(true);
    setProblem(null);
    setFieldErrors({});
    const webhook = {
      id: id ?? "",
      name: values.name,
      destinationUrl: values.destinationUrl.trim(),
      function: values.function,
      events: { approvalNodes: values.nodes, rejection: values.rejection },
      description: values.description,
      deliverOncePerRequest: values.deliverOncePerRequest,
      // An empty value keeps the stored one (the service never returns values).
      headers: values.headers.map((h) => ({ name: h.name.trim(), value: h.value, valueHint: "" })),
      clientCertificatePem: values.removeClientCert ? "" : values.clientCertPem,
      clientKeyPem: values.removeClientCert ? "" : values.clientKeyPem,
      serverCaPem: values.removeServerCa ? "" : values.serverCaPem,
    };
    const headersChanged =
      !original ||
      values.headers.length !== original.headers.length ||
      values.headers.some((h, i) => h.value !== "" || h.name.trim() !== original.headers[i]?.name);
    try {
      if (editing) {
        await admin.updateWebhook({
          webhook,
          updateMask: {
            paths: [
              "name",
              "destination_url",
              "function",
              "events",
              "description",
              "deliver_once_per_request",
              ...credentialPaths({ ...values, headersChanged }),
            ],
          },
          // Saved only if nobody changed the webhook since this form loaded it (else ABORTED).
          etag: original?.etag ?? "",
        });
        navigate({ name: "list" });
      } else {
        const res = await admin.createWebhook({ webhook, secret: values.secret.trim() });
        setCreated({ webhook: res.webhook!, secret: res.secret });
      }
    } catch (err) {
      const p = describeError(err);
      const fields: Record<string, string> = {};
      for (const [path, rule] of Object.entries(p.fields)) {
        const field = formFieldOf(path);
        if (!(field in fields)) fields[field] = rule;
      }
      setFieldErrors(fields);
      setProblem(p);
      // Focus the first field the service refused, in form order.
      const first = [
        "name",
        "destination_url",
        "function",
        "events",
        "secret",
        "description",
        "headers",
        "client_certificate_pem",
        "client_key_pem",
        "server_ca_pem",
      ].find((f) => f in fields);
      // Focused once the refusal has rendered (see the effect on `focusTarget`): an animation
      // frame could come before React's commit on a busy machine, and find no banner yet.
      setFocusTarget({ field: first });
    } finally {
      setSaving(false);
    }
  };

  if (created) {
    return (
      <section className="panel" aria-labelledby="created-title">
        <h1 id="created-title" tabIndex={-1}>
          Webhook created
        </h1>
        <p>
          <strong>{created.webhook.name}</strong> is enabled and sends to{" "}
          <span className="mono break">{created.webhook.destinationUrl}</span>.
        </p>
        <SecretReveal secret={created.secret} label="Secret key" />
        <p className="hint">
          The receiver verifies each request's <code>webhook-signature</code> with this secret (see{" "}
          <a href={href({ name: "docs" })} target="_blank" rel="noopener">
            Learn More
          </a>
          ). It cannot be shown again: if it is lost, rotate it.
        </p>
        <div className="actions">
          <a className="button button--primary" href={href({ name: "list" })}>
            Done
          </a>
          <a className="button" href={href({ name: "history", id: created.webhook.id })}>
            Open History
          </a>
        </div>
      </section>
    );
  }

  const noun = functionNoun(values.function);
  const nodeList = Array.from({ length: shownNodes }, (_, i) => i + 1);
  const errorOf = (field: string) => fieldErrors[field];
  const title = editing ? `Edit ${original?.name ?? "webhook"}` : "Create Webhook";

  return (
    <section className="panel" aria-labelledby="form-title">
      <p className="crumbs">
        <a href={href({ name: "list" })}>Webhooks</a> /
      </p>
      <h1 id="form-title" tabIndex={-1}>
        {title}
      </h1>
      {loading ? (
        <p role="status">Loading…</p>
      ) : (
        <form
          ref={formRef}
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          {problem && (
            <ErrorBanner
              problem={
                Object.keys(fieldErrors).length > 0
                  ? { ...problem, message: `Check the highlighted field: ${problem.message.replace(/^The service refused the request: /, "")}` }
                  : problem
              }
              onReload={() => setLoadCount((n) => n + 1)}
            />
          )}

          <Field id={ids.name} label="Name" error={errorOf("name")}>
            <input
              id={ids.name}
              data-field="name"
              className="input"
              value={values.name}
              onChange={(e) => set("name", e.target.value)}
              maxLength={200}
              autoComplete="off"
              {...invalidProps(ids.name, errorOf("name"))}
            />
          </Field>

          <Field
            id={ids.destination}
            label="Destination URL"
            error={errorOf("destination_url")}
            hint="The http(s) URL that receives the signed POSTs."
          >
            <input
              id={ids.destination}
              data-field="destination_url"
              className="input input--mono"
              type="url"
              inputMode="url"
              placeholder="https://example.com/hooks/withdrawals"
              value={values.destinationUrl}
              onChange={(e) => set("destinationUrl", e.target.value)}
              {...invalidProps(ids.destination, errorOf("destination_url"), true)}
            />
          </Field>

          <Field id={ids.fn} label="Select Function" error={errorOf("function")}>
            <select
              id={ids.fn}
              data-field="function"
              className="input"
              value={values.function}
              onChange={(e) => set("function", Number(e.target.value) as WebhookFunction)}
              {...invalidProps(ids.fn, errorOf("function"))}
            >
              <option value={WebhookFunction.UNSPECIFIED}>Choose a function…</option>
              {FUNCTIONS.map((f) => (
                <option key={f} value={f}>
                  {functionLabel(f)}
                </option>
              ))}
            </select>
          </Field>

          <fieldset
            className={`field fieldset ${errorOf("events") ? "field--invalid" : ""}`}
            aria-describedby={`${ids.events}-hint${errorOf("events") ? ` ${ids.events}-error` : ""}`}
          >
            <legend>Select Event</legend>
            <p id={`${ids.events}-hint`} className="hint">
              Node N is the approver level: with nodes 1 and 2 selected, an approval by a level 1 or a level 2 approver
              sends the webhook.
            </p>
            <div className="checks">
              {nodeList.map((n) => (
                <label key={n} className="check">
                  <input
                    type="checkbox"
                    data-node={n}
                    data-field={n === 1 ? "events" : undefined}
                    checked={values.nodes.includes(n)}
                    onChange={(e) => toggleNode(n, e.target.checked)}
                  />
                  Approve {noun} – Node {n}
                </label>
              ))}
            </div>
            <button
              type="button"
              className="button button--small"
              disabled={shownNodes >= MAX_NODE}
              onClick={() => {
                focusNode.current = shownNodes + 1;
                setShownNodes((s) => Math.min(s + 1, MAX_NODE));
              }}
            >
              Add node {shownNodes + 1}
            </button>
            <label className="check check--separate">
              <input type="checkbox" checked={values.rejection} onChange={(e) => set("rejection", e.target.checked)} />
              Reject {noun}
            </label>
            {errorOf("events") && (
              <p id={`${ids.events}-error`} className="field__error">
                {errorOf("events")}
              </p>
            )}
          </fieldset>

          {!editing && (
            <Field
              id={ids.secret}
              label="Secret Key (optional)"
              error={errorOf("secret")}
              hint="Leave empty to have the service generate one, or generate one here. It signs every request and is shown once, after saving."
            >
              <div className="secret__row">
                <input
                  id={ids.secret}
                  data-field="secret"
                  className="input input--mono"
                  value={values.secret}
                  onChange={(e) => set("secret", e.target.value)}
                  autoComplete="off"
                  spellCheck={false}
                  {...invalidProps(ids.secret, errorOf("secret"), true)}
                />
                <button type="button" className="button" onClick={() => set("secret", generateSecret())}>
                  Generate
                </button>
              </div>
            </Field>
          )}
          {editing && original && (
            <p className="hint">
              Secret key: <span className="mono">whsec_…{original.secretHint}</span> (rotate it from the webhook list).
            </p>
          )}

          <div className="field">
            <label className="check">
              <input
                id={ids.once}
                type="checkbox"
                checked={values.deliverOncePerRequest}
                onChange={(e) => set("deliverOncePerRequest", e.target.checked)}
                aria-describedby={`${ids.once}-hint`}
              />
              Deliver only the first matching event per request
            </label>
            <p id={`${ids.once}-hint`} className="hint">
              Later matching events about the same request are recorded in History as skipped.
            </p>
          </div>

          <Field id={ids.description} label="Description (optional)" error={errorOf("description")}>
            <textarea
              id={ids.description}
              data-field="description"
              className="input"
              rows={2}
              maxLength={1000}
              value={values.description}
              onChange={(e) => set("description", e.target.value)}
              {...invalidProps(ids.description, errorOf("description"))}
            />
          </Field>

          <fieldset
            className={`field fieldset ${errorOf("headers") ? "field--invalid" : ""}`}
            aria-describedby={`${ids.headers}-hint${errorOf("headers") ? ` ${ids.headers}-error` : ""}`}
          >
            <legend>Request headers (optional)</legend>
            <p id={`${ids.headers}-hint`} className="hint">
              Sent with every request, e.g. <code>Authorization</code> or <code>X-Api-Key</code> for the destination's
              gateway. Values are stored encrypted and never shown again{editing ? ": leave a value empty to keep it" : ""}.
            </p>
            {values.headers.map((h, i) => (
              <div key={i} className="secret__row">
                <input
                  className="input input--mono"
                  data-field={i === 0 ? "headers" : undefined}
                  aria-label={`Header ${i + 1} name`}
                  placeholder="Authorization"
                  value={h.name}
                  autoComplete="off"
                  spellCheck={false}
                  onChange={(e) => {
                    const headers = values.headers.map((x, j) => (j === i ? { ...x, name: e.target.value } : x));
                    set("headers", headers);
                  }}
                />
                <input
                  className="input input--mono"
                  type="password"
                  aria-label={`Header ${i + 1} value`}
                  placeholder={h.hint ? `${h.hint}: unchanged` : "value"}
                  value={h.value}
                  autoComplete="off"
                  spellCheck={false}
                  onChange={(e) => {
                    const headers = values.headers.map((x, j) => (j === i ? { ...x, value: e.target.value } : x));
                    set("headers", headers);
                  }}
                />
                <button
                  type="button"
                  className="button"
                  aria-label={`Remove header ${i + 1}`}
                  onClick={() =>
                    set(
                      "headers",
                      values.headers.filter((_, j) => j !== i),
                    )
                  }
                >
                  Remove
                </button>
              </div>
            ))}
            <button
              type="button"
              className="button button--small"
              disabled={values.headers.length >= 20}
              onClick={() => set("headers", [...values.headers, { name: "", value: "", hint: "" }])}
            >
              Add header
            </button>
            {errorOf("headers") && (
              <p id={`${ids.headers}-error`} className="field__error">
                {errorOf("headers")}
              </p>
            )}
          </fieldset>

          {original?.clientCertificate && (
            <div className="field">
              <p className="hint">
                Client certificate: <span className="mono">{original.clientCertificate.subject}</span>, expires{" "}
                {formatTime(original.clientCertificate.notAfter)}.
              </p>
              <label className="check">
                <input
                  type="checkbox"
                  checked={values.removeClientCert}
                  onChange={(e) => set("removeClientCert", e.target.checked)}
                />
                Remove the client certificate
              </label>
            </div>
          )}
          {!values.removeClientCert && (
            <>
              <Field
                id={ids.clientCert}
                label={original?.clientCertificate ? "New client certificate (optional, PEM)" : "Client certificate (optional, PEM)"}
                error={errorOf("client_certificate_pem")}
                hint="For destinations that require mutual TLS (https only): the certificate, then any intermediates."
              >
                <textarea
                  id={ids.clientCert}
                  data-field="client_certificate_pem"
                  className="input input--mono"
                  rows={3}
                  placeholder="-----BEGIN CERTIFICATE-----"
                  value={values.clientCertPem}
                  spellCheck={false}
                  onChange={(e) => set("clientCertPem", e.target.value)}
                  {...invalidProps(ids.clientCert, errorOf("client_certificate_pem"), true)}
                />
              </Field>
              <Field
                id={ids.clientKey}
                label="Client key (PEM)"
                error={errorOf("client_key_pem")}
                hint="The certificate's private key; stored encrypted and never shown again."
              >
                <textarea
                  id={ids.clientKey}
                  data-field="client_key_pem"
                  className="input input--mono"
                  rows={3}
                  placeholder="-----BEGIN PRIVATE KEY-----"
                  value={values.clientKeyPem}
                  spellCheck={false}
                  autoComplete="off"
                  onChange={(e) => set("clientKeyPem", e.target.value)}
                  {...invalidProps(ids.clientKey, errorOf("client_key_pem"), true)}
                />
              </Field>
            </>
          )}

          {original?.serverCa && (
            <div className="field">
              <p className="hint">
                Private CA: <span className="mono">{original.serverCa.subject}</span>, expires{" "}
                {formatTime(original.serverCa.notAfter)}.
              </p>
              <label className="check">
                <input
                  type="checkbox"
                  checked={values.removeServerCa}
                  onChange={(e) => set("removeServerCa", e.target.checked)}
                />
                Remove the private CA (trust public CAs again)
              </label>
            </div>
          )}
          {!values.removeServerCa && (
            <Field
              id={ids.serverCa}
              label={original?.serverCa ? "New private CA (optional, PEM)" : "Private CA (optional, PEM)"}
              error={errorOf("server_ca_pem")}
              hint="When set, the destination's certificate must be issued by this CA; public CAs are not trusted for it."
            >
              <textarea
                id={ids.serverCa}
                data-field="server_ca_pem"
                className="input input--mono"
                rows={3}
                placeholder="-----BEGIN CERTIFICATE-----"
                value={values.serverCaPem}
                spellCheck={false}
                onChange={(e) => set("serverCaPem", e.target.value)}
                {...invalidProps(ids.serverCa, errorOf("server_ca_pem"), true)}
              />
            </Field>
          )}

          <div className="actions">
            <button type="submit" className="button button--primary" disabled={saving}>
              {saving ? "Saving…" : "Save"}
            </button>
            <a className="button" href={href({ name: "list" })}>
              Cancel
            </a>
          </div>
        </form>
      )}
    </section>
  );
}

function invalidProps(id: string, error: string | undefined, hasHint = false) {
  const describedBy = [hasHint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return {
    "aria-invalid": error ? true : undefined,
    "aria-describedby": describedBy || undefined,
  } as const;
}

function Field({
  id,
  label,
  hint,
  error,
  children,
}: {
  id: string;
  label: string;
  hint?: string;
  error?: string;
  children: ReactNode;
}) {
  return (
    <div className={`field ${error ? "field--invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && (
        <p id={`${id}-hint`} className="hint">
          {hint}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} className="field__error">
          {error}
        </p>
      )}
    </div>
  );
}
