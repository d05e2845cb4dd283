import { useCallback, useEffect, useId, useRef, useState } from "react";
import { getToken, setToken, TOKEN_CHANGED, UNAUTHENTICATED } from "./api";
import { NoticeContext, Notices, type Notice } from "./components";
import { href, useRoute } from "./route";
import { ActivityView } from "./views/ActivityView";
import { DeliveryView } from "./views/DeliveryView";
import { DocsView } from "./views/DocsView";
import { HistoryView } from "./views/HistoryView";
import { WebhookForm } from "./views/WebhookForm";
import { WebhookList } from "./views/WebhookList";

export function App() {
  const route = useRoute();
  const [token, setTokenState] = useState(getToken);
  const [session, setSession] = useState(0);
  const [prompt, setPrompt] = useState<"" | "rejected" | "asked">("");
  const [notices, setNotices] = useState<Notice[]>([]);
  const mainRef = useRef<HTMLElement>(null);

  useEffect(() => {
    const onToken = () => {
      setTokenState(getToken());
      setSession((s) => s + 1);
    };
    const onUnauthenticated = () => setPrompt("rejected");
    window.addEventListener(TOKEN_CHANGED, onToken);
    window.addEventListener(UNAUTHENTICATED, onUnauthenticated);
    return () => {
      window.removeEventListener(TOKEN_CHANGED, onToken);
      window.removeEventListener(UNAUTHENTICATED, onUnauthenticated);
    };
  }, []);

  // Each new screen starts at the top, with its heading focused for screen-reader users.
  useEffect(() => {
    window.scrollTo(0, 0);
    mainRef.current?.querySelector<HTMLElement>("h1")?.focus({ preventScroll: true });
  }, [route]);

  const notify = useCallback((text: string, link?: Notice["link"]) => {
    const id = Date.now() + Math.random();
    setNotices((all) => [...all.slice(-2), { id, text, link }]);
    window.setTimeout(() => setNotices((all) => all.filter((n) => n.id !== id)), 8000);
  }, []);

  const signIn = (value: string) => {
    setToken(value);
    setPrompt("");
  };

  let view;
  if (prompt) {
    view = (
      <TokenPrompt
        rejected={prompt === "rejected"}
        hadToken={token !== ""}
        onSubmit={signIn}
        onCancel={() => setPrompt("")}
      />
    );
  } else {
    switch (route.name) {
      case "list":
        view = <WebhookList />;
        break;
      case "new":
        view = <WebhookForm />;
        break;
      case "edit":
        view = <WebhookForm id={route.id} />;
        break;
      case "history":
        view = <HistoryView webhookId={route.id} />;
        break;
      case "delivery":
        view = <DeliveryView webhookId={route.webhookId} deliveryId={route.id} />;
        break;
      case "docs":
        view = <DocsView />;
        break;
      case "activity":
        view = <ActivityView />;
        break;
      case "webhook-activity":
        view = <ActivityView key={route.id} webhookId={route.id} />;
        break;
    }
  }

  return (
    <NoticeContext.Provider value={notify}>
      <a className="skip-link" href="#main" onClick={(e) => { e.preventDefault(); mainRef.current?.focus(); }}>
        Skip to content
      </a>
      <header className="topbar">
        <a className="topbar__brand" href={href({ name: "list" })}>
          Webhooks <span className="topbar__sub">Back office</span>
        </a>
        <nav className="topbar__nav" aria-label="Main">
          <a href={href({ name: "list" })}>Webhooks</a>
          <a href={href({ name: "activity" })}>Activity</a>
          <a href={href({ name: "docs" })} target="_blank" rel="noopener">
            Learn More<span className="visually-hidden"> (opens in a new tab)</span>
          </a>
          {route.name !== "docs" && (
            <>
              <span className="topbar__token">{token ? "Token set" : "No token"}</span>
              <button type="button" className="button button--small" onClick={() => setPrompt("asked")}>
                {token ? "Change token" : "Enter token"}
              </button>
              {token && (
                <button type="button" className="button button--small" onClick={() => setToken("")}>
                  Sign out
                </button>
              )}
            </>
          )}
        </nav>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1} className="main" key={session}>
        {view}
      </main>
      <Notices notices={notices} dismiss={(id) => setNotices((all) => all.filter((n) => n.id !== id))} />
    </NoticeContext.Provider>
  );
}

function TokenPrompt({
  rejected,
  hadToken,
  onSubmit,
  onCancel,
}: {
  rejected: boolean;
  hadToken: boolean;
  onSubmit: (token: string) => void;
  onCancel: () => void;
}) {
  const [value, setValue] = useState("");
  const inputId = useId();
  const hintId = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  useEffect(() => inputRef.current?.focus(), []);
  return (
    <section className="panel panel--narrow" aria-labelledby="token-title">
      <h1 id="token-title" tabIndex={-1}>
        Sign in
      </h1>
      {rejected && hadToken && (
        <div className="banner banner--error" role="alert">
          The service did not accept the access token (UNAUTHENTICATED). Enter a valid token.
        </div>
      )}
      {rejected && !hadToken && (
        <p role="alert" className="banner banner--info">
          The service asks for an access token (UNAUTHENTICATED without one).
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onSubmit(value);
        }}
      >
        <div className="field">
          <label htmlFor={inputId}>Access token</label>
          <input
            id={inputId}
            ref={inputRef}
            className="input input--mono"
            type="password"
            autoComplete="off"
            value={value}
            onChange={(e) => setValue(e.target.value)}
            aria-describedby={hintId}
          />
          <p id={hintId} className="hint">
            An admin token of the service (WEBHOOKS_ADMIN_TOKEN, or an API key from <code>webhooks keys create</code>). It is
            sent as <code>authorization: Bearer …</code> and kept in this browser tab only (sessionStorage).
          </p>
        </div>
        <div className="actions">
          <button type="submit" className="button button--primary" disabled={!value.trim()}>
            Sign in
          </button>
          <button type="button" className="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
