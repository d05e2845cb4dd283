//! The alert processor's side of the store: walking the webhook-level entries of the update
//! log once, cluster-wide, and enqueuing operational webhooks for them.

use super::events::{insert_event, insert_single_delivery};
use super::{Store, StoreError, UpdateFilter, UpdateRecord};
use crate::domain::{Cursor, PublishedEvent, WebhookId};

impl Store {
    /// Takes the next webhook-level log entries (at most `limit`) after the processor's
    /// progress, enqueues for each the operational event `build` makes (when `operational`
    /// names the internal webhook), and moves the progress past them, in one transaction: an
    /// entry is processed once across every instance. `None` when another instance holds the
    /// progress row right now. Entries about the operational webhook itself never raise one,
    /// so it cannot alert about its own failures in a loop.
    pub async fn raise_alerts(
        &self,
        limit: i64,
        operational: Option<WebhookId>,
        build: impl Fn(&UpdateRecord) -> Option<PublishedEvent>,
    ) -> Result<Option<Vec<UpdateRecord>>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT cursor FROM delivery_update_alert_progress FOR UPDATE SKIP LOCKED",
                &[],
            )
            .await?
        else {
            return Ok(None);
        };
        let after = Cursor::new(row.try_get(0)?);
        let (_, head) = self.update_cursor_range().await?;
        if head.get() <= after.get() {
            return Ok(Some(Vec::new()));
        }
        let filter = UpdateFilter {
            webhook_level_only: true,
            ..UpdateFilter::default()
        };
        let entries = self.read_updates(after, head, &filter, limit).await?;
        // A full page may have more behind it; otherwise everything up to the head was seen.
        let reached = match entries.last() {
            Some(last) if entries.len() as i64 >= limit => last.cursor,
            _ => head,
        };
        let mut enqueued = false;
        if let Some(hook) = operational {
            for entry in entries.iter().filter(|e| e.webhook_id != hook) {
                if let Some(event) = build(entry)
                    && insert_event(&tx, &event).await?
                {
                    insert_single_delivery(&tx, hook, &event).await?;
                    enqueued = true;
                }
            }
        }
        tx.execute(
            "UPDATE delivery_update_alert_progress SET cursor = $1",
            &[&reached.get()],
        )
        .await?;
        if enqueued {
            self.notify_deliveries(&tx).await?;
        }
        tx.commit().await?;
        if enqueued {
            self.appended_updates();
            self.wakeups().deliveries.wake();
        }
        Ok(Some(entries))
    }
}
