// Live delivery updates: a WatchDeliveries server stream (gRPC-Web carries server streaming),
// resumed from the last cursor after a dropped connection so no update is lost or repeated.

import { useEffect, useRef, useState } from "react";
import { createContextValues } from "@connectrpc/connect";
import { admin, onStreamOpen } from "./api";
import { Code, describeError, type Problem } from "./errors";
import type { DeliveryUpdate } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/delivery_pb";
import type { Function as WebhookFunction } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb";

export type WatchState = "connecting" | "live" | "reconnecting" | "stopped";

export interface WatchFilter {
  webhookId?: string;
  function?: WebhookFunction;
}

/**
 * Follows WatchDeliveries while the component is mounted. `onUpdate` gets every update;
 * `onOpen` is called each time the stream (re)opens (its response headers arrived), so the caller
 * can reload what it shows and miss nothing that happened before the stream started.
 */
export function useDeliveryWatch(
  filter: WatchFilter,
  onUpdate: (update: DeliveryUpdate) => void,
  onOpen?: () => void,
): { state: WatchState; problem: Problem | null } {
  const [state, setState] = useState<WatchState>("connecting");
  const [problem, setProblem] = useState<Problem | null>(null);
  const handlers = useRef({ onUpdate, onOpen });
  handlers.current = { onUpdate, onOpen };
  const key = `${filter.webhookId ?? ""}|${filter.function ?? 0}`;

  useEffect(() => {
    const abort = new AbortController();
    let cursor = "";
    let delay = 500;
    setState("connecting");
    setProblem(null);
    const run = async () => {
      while (!abort.signal.aborted) {
        try {
          const contextValues = createContextValues().set(onStreamOpen, () => {
            if (abort.signal.aborted) return;
            setState("live");
            setProblem(null);
            delay = 500;
            handlers.current.onOpen?.();
          });
          const stream = admin.watchDeliveries(
            { webhookId: filter.webhookId ?? "", function: filter.function ?? 0, afterCursor: cursor },
            { signal: abort.signal, contextValues },
          );
          for await (const update of stream) {
            cursor = update.cursor;
            handlers.current.onUpdate(update);
          }
          // The server ended the stream (it is shutting down): resume elsewhere or later.
        } catch (err) {
          if (abort.signal.aborted) return;
          const p = describeError(err);
          if (p.code === Code.Unauthenticated || p.code === Code.PermissionDenied) {
            setProblem(p);
            setState("stopped");
            return;
          }
          // A cursor outside the retained log: start again from now.
          if (p.code === Code.OutOfRange) cursor = "";
          setProblem(p);
        }
        if (abort.signal.aborted) return;
        setState("reconnecting");
        await sleep(delay, abort.signal);
        delay = Math.min(delay * 2, 10_000);
      }
    };
    void run();
    return () => abort.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  return { state, problem };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

export function LiveLabel(state: WatchState): string {
  switch (state) {
    case "live":
      return "Live";
    case "connecting":
      return "Connecting…";
    case "reconnecting":
      return "Reconnecting…";
    case "stopped":
      return "Not live";
  }
}
