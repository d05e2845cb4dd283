// Screens are addressed by the URL fragment, so every screen has a link that can be bookmarked,
// opened in a new tab ("Learn More") or reloaded, and the service needs no routes of its own.

import { useEffect, useState } from "react";

export type Route =
  | { name: "list" }
  | { name: "new" }
  | { name: "edit"; id: string }
  | { name: "history"; id: string }
  | { name: "delivery"; webhookId: string; id: string }
  | { name: "docs" }
  | { name: "activity" }
  | { name: "webhook-activity"; id: string };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "docs") return { name: "docs" };
  if (parts[0] === "activity") return { name: "activity" };
  if (parts[0] === "webhooks") {
    if (parts[1] === "new") return { name: "new" };
    if (parts[1] && parts[2] === "edit") return { name: "edit", id: parts[1] };
    if (parts[1] && parts[2] === "history") return { name: "history", id: parts[1] };
    if (parts[1] && parts[2] === "activity") return { name: "webhook-activity", id: parts[1] };
    if (parts[1] && parts[2] === "deliveries" && parts[3]) {
      return { name: "delivery", webhookId: parts[1], id: parts[3] };
    }
  }
  return { name: "list" };
}

export function href(route: Route): string {
  const e = encodeURIComponent;
  switch (route.name) {
    case "list":
      return "#/webhooks";
    case "new":
      return "#/webhooks/new";
    case "edit":
      return `#/webhooks/${e(route.id)}/edit`;
    case "history":
      return `#/webhooks/${e(route.id)}/history`;
    case "delivery":
      return `#/webhooks/${e(route.webhookId)}/deliveries/${e(route.id)}`;
    case "docs":
      return "#/docs";
    case "activity":
      return "#/activity";
    case "webhook-activity":
      return `#/webhooks/${e(route.id)}/activity`;
  }
}

export function navigate(route: Route): void {
  window.location.hash = href(route);
}

/** The current route, following hash changes. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
