//! Opaque page tokens (AIP-158). A token wraps the sequence number of the last row returned, so
//! pages stay stable while rows are added.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::ValidationError;

/// A position in a listing ordered by a table's `seq` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    /// The `seq` of the last row of the previous page.
    pub after_seq: i64,
}

const PREFIX: &str = "p1:";

impl PageToken {
    /// Parses `page_token`; empty means the first page.
    pub fn parse(value: &str) -> Result<Option<Self>, ValidationError> {
        if value.is_empty() {
            return Ok(None);
        }
        let invalid = || ValidationError::new("page_token", "is not a token returned by this API");
        let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let seq = text.strip_prefix(PREFIX).ok_or_else(invalid)?;
        let after_seq = seq.parse::<i64>().map_err(|_| invalid())?;
        Ok(Some(Self { after_seq }))
    }

    /// The token's wire form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{PREFIX}{}", self.after_seq))
    }
}

/// Parses `page_size`: 0 means `default`, otherwise 1 to `max`.
pub fn page_size(value: i32, default: i64, max: i64) -> Result<i64, ValidationError> {
    match i64::from(value) {
        0 => Ok(default),
        n if (1..=max).contains(&n) => Ok(n),
        _ => Err(ValidationError::new(
            "page_size",
            format!("must be between 1 and {max} (0 means {default})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        let token = PageToken { after_seq: 42 };
        assert_eq!(PageToken::parse(&token.encode()).unwrap(), Some(token));
        assert_eq!(PageToken::parse("").unwrap(), None);
        assert_eq!(
            PageToken::parse("garbage!").unwrap_err().field,
            "page_token"
        );
    }

    #[test]
    fn page_size_defaults_and_bounds() {
        assert_eq!(page_size(0, 50, 1000).unwrap(), 50);
        assert_eq!(page_size(1000, 50, 1000).unwrap(), 1000);
        assert!(page_size(1001, 50, 1000).is_err());
        assert!(page_size(-1, 50, 1000).is_err());
    }
}
