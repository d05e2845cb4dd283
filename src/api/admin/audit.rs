//! WebhookAdmin's ListAuditEvents: the audit trail, newest first, filtered and paged.

use tonic::{Request, Response, Status};

use super::{AdminService, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, bad};
use crate::api::convert::{self, timestamps};
use crate::domain::{PageFilters, PageToken, ValidationError, check_max_chars, page_size};
use crate::proto::v1 as pb;
use crate::store::AuditFilter;

pub(super) async fn list_audit_events(
    service: &AdminService,
    request: Request<pb::ListAuditEventsRequest>,
) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
    let request = request.into_inner();
    let limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let optional = |field: &str, value: String| -> Result<Option<String>, Status> {
        check_max_chars(field, &value, 200)?;
        Ok((!value.is_empty()).then_some(value))
    };
    let filter = AuditFilter {
        actor: optional("actor", request.actor)?,
        target_kind: optional("target_kind", request.target_kind)?,
        target_id: optional("target_id", request.target_id)?,
        action: optional("action", request.action)?,
        after: request
            .time_after
            .as_ref()
            .map(|t| timestamps::from_proto("time_after", t))
            .transpose()?,
        before: request
            .time_before
            .as_ref()
            .map(|t| timestamps::from_proto("time_before", t))
            .transpose()?,
    };
    if filter.target_id.is_some() && filter.target_kind.is_none() {
        return Err(bad(ValidationError::new(
            "target_kind",
            "is required with target_id (webhook, delivery, api_key or vault)",
        )));
    }
    let filters = PageFilters::new("ListAuditEvents")
        .optional("actor", filter.actor.as_deref())
        .optional("target_kind", filter.target_kind.as_deref())
        .optional("target_id", filter.target_id.as_deref())
        .optional("action", filter.action.as_deref())
        .optional("time_after", filter.after.map(|t| t.unix_timestamp_nanos()))
        .optional(
            "time_before",
            filter.before.map(|t| t.unix_timestamp_nanos()),
        );
    let before = PageToken::parse(&request.page_token, &filters, &service.page_tokens)?;
    let (records, next) = service
        .store
        .list_audit_events(&filter, before, limit)
        .await?;
    Ok(Response::new(pb::ListAuditEventsResponse {
        audit_events: records.iter().map(convert::audit_event).collect(),
        next_page_token: next
            .map(|t| t.encode(&filters, &service.page_tokens))
            .unwrap_or_default(),
    }))
}
