//! Resource ids are UUIDs; a malformed one is the caller's mistake (INVALID_ARGUMENT), an unknown
//! one is NOT_FOUND.

use uuid::Uuid;

use super::ValidationError;

/// Parses the id in `field`.
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    Uuid::try_parse(value.trim()).map_err(|_| {
        ValidationError::new(
            field,
            "must be a UUID like 0190c6f6-8f5e-7c3a-9d4e-2b1f0a9c8d7e",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_empty_ids_name_the_field() {
        assert_eq!(parse_id("id", "").unwrap_err().rule, "is required");
        assert_eq!(
            parse_id("webhook_id", "nope").unwrap_err().field,
            "webhook_id"
        );
        assert!(parse_id("id", &Uuid::new_v4().to_string()).is_ok());
    }
}
