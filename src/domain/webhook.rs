//! The parts of a webhook's configuration, each valid by construction.

use std::net::IpAddr;

use url::{Host, Url};

use super::{ValidationError, check_max_chars, quoted};

/// The kind of client request a webhook reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// Withdrawal requests.
    Withdrawal,
    /// Prop-trading participation requests.
    PropTradingParticipation,
    /// Prop-trading live-stage requests.
    PropTradingLiveStage,
}

impl Function {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Withdrawal => "withdrawal",
            Self::PropTradingParticipation => "prop_trading_participation",
            Self::PropTradingLiveStage => "prop_trading_live_stage",
        }
    }

    /// Reads the name stored in the database.
    pub fn from_db(value: &str) -> Option<Self> {
        match value {
            "withdrawal" => Some(Self::Withdrawal),
            "prop_trading_participation" => Some(Self::PropTradingParticipation),
            "prop_trading_live_stage" => Some(Self::PropTradingLiveStage),
            _ => None,
        }
    }

    /// The prefix of this function's event types, e.g. `prop_trading.participation`.
    pub fn event_prefix(self) -> &'static str {
        match self {
            Self::Withdrawal => "withdrawal",
            Self::PropTradingParticipation => "prop_trading.participation",
            Self::PropTradingLiveStage => "prop_trading.live_stage",
        }
    }
}

/// A webhook's name: 1 to 200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookName(String);

impl WebhookName {
    /// Trims and checks `value`.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        let trimmed = value.trim();
        let count = trimmed.chars().count();
        if count == 0 || count > 200 {
            return Err(ValidationError::new(field, "must be 1 to 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A webhook's description: at most 1000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Checks `value`.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        check_max_chars(field, value, 1000)?;
        Ok(Self(value.to_owned()))
    }

    /// The description.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a webhook's POSTs go: an absolute http(s) URL with a host and no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationUrl(Url);

/// The setting that lets destinations point at loopback and private networks (tests, local demos).
pub const ALLOW_PRIVATE_SETTING: &str = "WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS";

impl DestinationUrl {
    /// Parses `value`. Unless `allow_private`, a literal loopback, private, link-local or
    /// unspecified address (or `localhost`) is refused. This is only the syntactic part of the
    /// SSRF guard: the API parses with `allow_private = true` and then applies
    /// `delivery::DestinationGuard` (allow-list, https requirement, names resolved and checked).
    pub fn parse(field: &str, value: &str, allow_private: bool) -> Result<Self, ValidationError> {
        if value.len() > 2048 {
            return Err(ValidationError::new(
                field,
                "must be at most 2048 characters",
            ));
        }
        let url = Url::parse(value.trim()).map_err(|e| {
            ValidationError::new(field, format!("must be an absolute http(s) URL ({e})"))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(ValidationError::new(
                field,
                "must use the http or https scheme",
            ));
        }
        // Percent-encoding can make the stored form several times longer than what was typed;
        // UpdateWebhook parses the stored form again, so it must keep the limit too.
        if url.as_str().len() > 2048 {
            return Err(ValidationError::new(
                field,
                "must be at most 2048 characters once percent-encoded",
            ));
        }
        let Some(host) = url.host() else {
            return Err(ValidationError::new(field, "must have a host"));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ValidationError::new(
                field,
                "must not carry credentials (user:password@); authenticate receivers with the signature",
            ));
        }
        if !allow_private && host_is_private(&host) {
            return Err(ValidationError::new(
                field,
                format!(
                    "points to a loopback or private address; set {ALLOW_PRIVATE_SETTING}=true to allow it"
                ),
            ));
        }
        Ok(Self(url))
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

fn host_is_private(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Host::Ipv4(ip) => ip_is_private(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => ip_is_private(IpAddr::V6(*ip)),
    }
}

/// Whether `ip` is somewhere a webhook must not reach by default: loopback, private, link-local
/// (cloud metadata included), CGNAT, unique-local, multicast, broadcast, unspecified, reserved
/// and the other ranges of [`super::blocked_range`] (IPv4-mapped forms included).
pub fn ip_is_private(ip: IpAddr) -> bool {
    super::blocked_range(ip).is_some()
}

/// The decisions that fire a webhook: approval at any of the chosen nodes, and/or rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSelection {
    approval_nodes: Vec<u32>,
    rejection: bool,
}

/// The highest approver level accepted.
pub const MAX_APPROVAL_NODE: u32 = 1000;
const MAX_SELECTED_NODES: usize = 32;

impl EventSelection {
    /// Checks a selection: at least one event, nodes 1 to 1000, no duplicates, at most 32 nodes.
    /// Nodes are kept sorted.
    pub fn parse(
        field: &str,
        approval_nodes: &[u32],
        rejection: bool,
    ) -> Result<Self, ValidationError> {
        let nodes_field = format!("{field}.approval_nodes");
        if approval_nodes.len() > MAX_SELECTED_NODES {
            return Err(ValidationError::new(
                nodes_field,
                format!("must list at most {MAX_SELECTED_NODES} nodes"),
            ));
        }
        let mut nodes = approval_nodes.to_vec();
        if let Some(bad) = nodes.iter().find(|n| **n == 0 || **n > MAX_APPROVAL_NODE) {
            return Err(ValidationError::new(
                nodes_field,
                format!(
                    "node {bad} is out of range: nodes are approver levels 1 to {MAX_APPROVAL_NODE}"
                ),
            ));
        }
        nodes.sort_unstable();
        if let Some(pair) = nodes.windows(2).find(|w| w[0] == w[1]) {
            return Err(ValidationError::new(
                nodes_field,
                format!("node {} is listed twice", pair[0]),
            ));
        }
        if nodes.is_empty() && !rejection {
            return Err(ValidationError::new(
                field,
                "must select at least one event: an approval node or rejection",
            ));
        }
        Ok(Self {
            approval_nodes: nodes,
            rejection,
        })
    }

    /// Rebuilds a selection read from the database.
    pub fn from_parts(approval_nodes: Vec<u32>, rejection: bool) -> Self {
        Self {
            approval_nodes,
            rejection,
        }
    }

    /// The selected nodes, ascending.
    pub fn approval_nodes(&self) -> &[u32] {
        &self.approval_nodes
    }

    /// Whether rejections fire.
    pub fn rejection(&self) -> bool {
        self.rejection
    }
}

/// A field UpdateWebhook may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateField {
    /// `name`
    Name,
    /// `destination_url`
    DestinationUrl,
    /// `function`
    Function,
    /// `events`: the whole selection.
    Events,
    /// `events.approval_nodes`
    ApprovalNodes,
    /// `events.rejection`
    Rejection,
    /// `description`
    Description,
    /// `deliver_once_per_request`
    DeliverOncePerRequest,
    /// `headers`: the whole list.
    Headers,
    /// `client_certificate_pem` with `client_key_pem` (the mask must name both).
    ClientCertificate,
    /// `server_ca_pem`
    ServerCa,
}

/// Parses an update mask's paths: non-empty, known, writable fields only; a client certificate
/// and its key change together, so the mask names both or neither.
pub fn parse_update_mask(paths: &[String]) -> Result<Vec<UpdateField>, ValidationError> {
    const FIELD: &str = "update_mask";
    if paths.is_empty() {
        return Err(ValidationError::new(
            FIELD,
            "must name at least one field to change",
        ));
    }
    let names = |path: &str| paths.iter().any(|p| p == path);
    if names("client_certificate_pem") != names("client_key_pem") {
        return Err(ValidationError::new(
            FIELD,
            "must name client_certificate_pem and client_key_pem together: a certificate and \
             its key change as a pair",
        ));
    }
    paths
        .iter()
        .map(|path| match path.as_str() {
            "name" => Ok(UpdateField::Name),
            "destination_url" => Ok(UpdateField::DestinationUrl),
            "function" => Ok(UpdateField::Function),
            "events" => Ok(UpdateField::Events),
            "events.approval_nodes" => Ok(UpdateField::ApprovalNodes),
            "events.rejection" => Ok(UpdateField::Rejection),
            "description" => Ok(UpdateField::Description),
            "deliver_once_per_request" => Ok(UpdateField::DeliverOncePerRequest),
            "headers" => Ok(UpdateField::Headers),
            "client_certificate_pem" | "client_key_pem" => Ok(UpdateField::ClientCertificate),
            "server_ca_pem" => Ok(UpdateField::ServerCa),
            "client_certificate" | "server_ca" => Err(ValidationError::new(
                FIELD,
                format!("{} is output only: set {path}_pem instead", quoted(path)),
            )),
            "enabled" => Err(ValidationError::new(
                FIELD,
                "`enabled` is not changed here: use SetWebhookEnabled",
            )),
            "secret_hint" => Err(ValidationError::new(
                FIELD,
                "`secret_hint` is output only: use RotateWebhookSecret",
            )),
            "id"
            | "created_at"
            | "updated_at"
            | "disabled_reason"
            | "disabled_at"
            | "consecutive_failures"
            | "circuit_open_until" => Err(ValidationError::new(
                FIELD,
                format!("{} is output only", quoted(path)),
            )),
            other => Err(ValidationError::new(
                FIELD,
                format!("unknown field {}", quoted(other)),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            WebhookName::parse("n", "  Payouts ").unwrap().as_str(),
            "Payouts"
        );
        assert!(WebhookName::parse("n", "   ").is_err());
        assert!(WebhookName::parse("n", &"x".repeat(201)).is_err());
        assert!(WebhookName::parse("n", &"é".repeat(200)).is_ok());
    }

    #[test]
    fn destination_must_be_absolute_http_without_credentials() {
        assert!(DestinationUrl::parse("u", "https://example.com/hook", false).is_ok());
        assert!(DestinationUrl::parse("u", "/relative", false).is_err());
        assert!(DestinationUrl::parse("u", "ftp://example.com", false).is_err());
        assert!(DestinationUrl::parse("u", "https://u:p@example.com", false).is_err());
    }

    #[test]
    fn private_destinations_need_the_setting() {
        for url in [
            "http://127.0.0.1:9/",
            "http://localhost/",
            "http://[::1]/",
            "http://169.254.169.254/",
            "http://10.1.2.3/",
            "http://100.64.0.1/",
        ] {
            let err = DestinationUrl::parse("u", url, false).unwrap_err();
            assert!(err.rule.contains(ALLOW_PRIVATE_SETTING), "{url}");
            assert!(DestinationUrl::parse("u", url, true).is_ok(), "{url}");
        }
    }

    #[test]
    fn selections_need_an_event_and_valid_distinct_nodes() {
        assert!(EventSelection::parse("e", &[], false).is_err());
        assert!(EventSelection::parse("e", &[0], false).is_err());
        assert!(EventSelection::parse("e", &[2, 2], false).is_err());
        let ok = EventSelection::parse("e", &[3, 1], true).unwrap();
        assert_eq!(ok.approval_nodes(), &[1, 3]);
        assert!(ok.rejection());
    }

    #[test]
    fn update_masks_refuse_read_only_and_unknown_fields() {
        assert!(parse_update_mask(&[]).is_err());
        assert!(
            parse_update_mask(&["enabled".into()])
                .unwrap_err()
                .rule
                .contains("SetWebhookEnabled")
        );
        assert!(
            parse_update_mask(&["bogus".into()])
                .unwrap_err()
                .rule
                .contains("unknown")
        );
        assert_eq!(
            parse_update_mask(&["name".into()]).unwrap(),
            vec![UpdateField::Name]
        );
    }

    #[test]
    fn update_mask_refusals_quote_at_most_64_characters_of_a_path() {
        let long = "é".repeat(10_000);
        let rule = parse_update_mask(&[long]).unwrap_err().rule;
        assert!(rule.contains("(10000 characters)"), "{rule}");
        assert!(rule.chars().count() < 120, "{rule}");
    }
}
