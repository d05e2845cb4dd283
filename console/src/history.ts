// How the History screen combines list pages and live updates. Pure: unit-tested.

import { timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Delivery } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/delivery_pb";
import type { DeliveryStatus } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb";

export interface HistoryFilters {
  /** 0: any status. */
  status: DeliveryStatus;
  eventType: string;
  requestId: string;
  /** datetime-local values in the user's time zone; "" when unset. */
  from: string;
  to: string;
}

function ms(ts: Timestamp | undefined): number {
  return ts ? timestampMs(ts) : 0;
}

/** Whether a delivery belongs in a History filtered by `f` (the same rules as ListDeliveries). */
export function matchesFilters(d: Delivery, f: HistoryFilters): boolean {
  if (f.status && d.status !== f.status) return false;
  if (f.eventType.trim() && d.eventType !== f.eventType.trim()) return false;
  if (f.requestId.trim() && d.requestId !== f.requestId.trim()) return false;
  const created = ms(d.createdAt);
  if (f.from && created < new Date(f.from).getTime()) return false;
  if (f.to && created >= new Date(f.to).getTime()) return false;
  return true;
}

/** Newest first, as ListDeliveries orders them (ties by id, descending). */
function newestFirst(a: Delivery, b: Delivery): number {
  return ms(b.createdAt) - ms(a.createdAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/**
 * Merges deliveries (a list page, or one delivery from the live stream) into what the screen
 * shows, newest first. For a delivery known twice, the version changed last (updated_at) wins, so
 * a list page fetched before a live update cannot undo it, and rows loaded with "Load older" stay.
 */
export function mergeDeliveries(shown: readonly Delivery[], incoming: readonly Delivery[]): Delivery[] {
  const byId = new Map<string, Delivery>();
  const keep = (d: Delivery) => {
    const known = byId.get(d.id);
    if (!known || ms(d.updatedAt) >= ms(known.updatedAt)) byId.set(d.id, d);
  };
  shown.forEach(keep);
  incoming.forEach(keep);
  return [...byId.values()].sort(newestFirst);
}
