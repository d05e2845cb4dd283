//! Properties of the validation of CreateWebhook and UpdateWebhook requests, field by field and
//! as a whole: the parsers never panic, what they accept keeps the documented rules, and what
//! they refuse names the field the caller got wrong.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use url::Host;
use webhooks::api::convert;
use webhooks::domain::{
    Description, DestinationUrl, Secret, SecretError, UpdateField, ValidationError, WebhookName,
    ip_is_private, parse_update_mask,
};
use webhooks::proto::v1 as pb;

use crate::strategies::{
    boundary_text, enum_value, hostile_text, hostile_text_bounded, nasty_text, node,
};

// ----- generators ------------------------------------------------------------------------------

/// A destination URL: assembled from hostile parts (odd schemes, credentials, private and
/// obfuscated addresses, bad ports, long and non-ASCII paths) or entirely hostile.
pub fn url_text() -> BoxedStrategy<String> {
    let scheme = prop::sample::select(vec![
        "http",
        "https",
        "HTTPS",
        "ftp",
        "file",
        "javascript",
        "ws",
        "",
    ]);
    let userinfo = prop::sample::select(vec!["", "", "", "user@", "user:pass@", ":@", "@"]);
    let host = prop_oneof![
        3 => "[a-z]{1,10}\\.(com|example|test)",
        2 => any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        1 => any::<[u16; 8]>().prop_map(|s| format!("[{}]", Ipv6Addr::from(s))),
        3 => prop::sample::select(vec![
            "localhost",
            "LOCALHOST.",
            "a.localhost",
            "127.0.0.1",
            "169.254.169.254",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:169.254.169.254]",
            "[fd00::1]",
            "0",
            "0x7f000001",
            "2130706433",
            "127.1",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "[fe80::1%25eth0]",
            "ex%61mple.com",
            "exa mple.com",
            "xn--nxasmq6b.com",
            "",
        ])
        .prop_map(str::to_owned),
        1 => nasty_text(12),
    ];
    let port = prop_oneof![
        3 => Just(String::new()),
        1 => (0u32..70_000).prop_map(|p| format!(":{p}")),
        1 => Just(":".to_owned()),
    ];
    let path = prop_oneof![
        2 => Just("/".to_owned()),
        2 => "/[a-z/?=&#]{0,20}",
        1 => nasty_text(20).prop_map(|p| format!("/{p}")),
        1 => boundary_text().prop_map(|p| format!("/{p}")),
    ];
    let assembled = (scheme, userinfo, host, port, path)
        .prop_map(|(s, u, h, p, path)| format!("{s}://{u}{h}{p}{path}"));
    prop_oneof![4 => assembled, 1 => hostile_text()].boxed()
}

/// An event selection (or none): node lists crossing the 32-node limit, zeros, duplicates.
pub fn selection() -> impl Strategy<Value = Option<pb::EventSelection>> {
    let nodes = prop_oneof![
        4 => prop::collection::vec(node(), 0..6),
        1 => prop::collection::vec(1u32..=1000, 30..35),
        1 => prop::collection::vec(1u32..=3, 2..5),
    ];
    prop::option::weighted(
        0.9,
        (nodes, any::<bool>()).prop_map(|(approval_nodes, rejection)| pb::EventSelection {
            approval_nodes,
            rejection,
        }),
    )
}

/// A secret as an admin might type it: empty, whsec_ with base64 of any size (sometimes
/// corrupted), plain strings around 16 and 256 characters, or hostile.
pub fn secret_text() -> BoxedStrategy<String> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    prop_oneof![
        1 => Just(String::new()),
        2 => prop::collection::vec(any::<u8>(), 0..80)
            .prop_map(|key| format!("whsec_{}", STANDARD.encode(key))),
        1 => (prop::collection::vec(any::<u8>(), 20..40), any::<usize>(), nasty_text(2)).prop_map(
            |(key, at, junk)| {
                let mut text = format!("whsec_{}", STANDARD.encode(key));
                let at = 6 + at % (text.len() - 6);
                if text.is_char_boundary(at) {
                    text.insert_str(at, &junk);
                }
                text
            }
        ),
        3 => hostile_text(),
    ]
    .boxed()
}

/// The paths of an update mask: writable, output-only, unknown or hostile.
pub fn mask_paths() -> impl Strategy<Value = Vec<String>> {
    let path = prop_oneof![
        6 => prop::sample::select(WRITABLE.to_vec()).prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            "enabled",
            "secret_hint",
            "id",
            "created_at",
            "updated_at",
            "disabled_reason",
            "disabled_at",
            "events.",
            "Name",
            " name",
            "events.approval_nodes.0",
            "*",
            "",
        ])
        .prop_map(str::to_owned),
        1 => hostile_text_bounded(),
    ];
    prop::collection::vec(path, 0..5)
}

/// The paths UpdateWebhook may change.
pub const WRITABLE: [&str; 8] = [
    "name",
    "destination_url",
    "function",
    "events",
    "events.approval_nodes",
    "events.rejection",
    "description",
    "deliver_once_per_request",
];

// ----- the rules, written independently of the parsers ----------------------------------------

/// Whether `ip` is an address no webhook may reach by default, by the documented ranges.
fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// What CreateWebhook must answer for `request`, checked field by field in the order the API
/// documents; `Ok` means every field is valid.
pub fn validate_create(
    request: &pb::CreateWebhookRequest,
    allow_private: bool,
) -> Result<(), ValidationError> {
    let Some(webhook) = &request.webhook else {
        return Err(ValidationError::new("webhook", "is required"));
    };
    WebhookName::parse("webhook.name", &webhook.name)?;
    DestinationUrl::parse(
        "webhook.destination_url",
        &webhook.destination_url,
        allow_private,
    )?;
    convert::function("webhook.function", webhook.function)?;
    convert::event_selection("webhook.events", webhook.events.as_ref())?;
    Description::parse("webhook.description", &webhook.description)?;
    Secret::parse_or_generate(&request.secret)
        .map_err(|e| ValidationError::new("secret", e.to_string()))?;
    Ok(())
}

// ----- properties --------------------------------------------------------------------------------

proptest! {
    #![proptest_config(crate::strategies::config(512))]

    #[test]
    fn names_are_trimmed_1_to_200_characters_without_controls(value in hostile_text()) {
        let trimmed = value.trim();
        let valid = (1..=200).contains(&trimmed.chars().count())
            && !trimmed.chars().any(char::is_control);
        match WebhookName::parse("webhook.name", &value) {
            Ok(name) => {
                prop_assert!(valid, "accepted {value:?}");
                prop_assert_eq!(name.as_str(), trimmed);
            }
            Err(error) => {
                prop_assert!(!valid, "refused {value:?}: {error}");
                prop_assert_eq!(error.field, "webhook.name");
            }
        }
    }

    #[test]
    fn descriptions_are_at_most_1000_characters(value in hostile_text()) {
        match Description::parse("webhook.description", &value) {
            Ok(description) => {
                prop_assert!(value.chars().count() <= 1000);
                prop_assert_eq!(description.as_str(), value.as_str());
            }
            Err(error) => {
                // NUL may be refused too: Postgres text cannot hold it (the end-to-end test
                // checks the service never fails on it).
                prop_assert!(value.chars().count() > 1000 || value.contains('\0'), "{value:?}");
                prop_assert_eq!(error.field, "webhook.description");
            }
        }
    }

    #[test]
    fn destinations_are_http_urls_with_a_public_host_and_no_credentials(
        value in url_text(),
        allow_private in any::<bool>(),
    ) {
        let field = "webhook.destination_url";
        match DestinationUrl::parse(field, &value, allow_private) {
            Ok(url) => {
                prop_assert!(value.len() <= 2048);
                let parsed = url.as_url();
                prop_assert!(matches!(parsed.scheme(), "http" | "https"), "{value:?}");
                prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
                let host = parsed.host();
                prop_assert!(host.is_some(), "{value:?} has no host");
                if !allow_private {
                    match host {
                        Some(Host::Ipv4(ip)) => {
                            prop_assert!(!forbidden_ip(IpAddr::V4(ip)), "{value:?}");
                            prop_assert!(!ip_is_private(IpAddr::V4(ip)));
                        }
                        Some(Host::Ipv6(ip)) => {
                            prop_assert!(!forbidden_ip(IpAddr::V6(ip)), "{value:?}");
                            prop_assert!(!ip_is_private(IpAddr::V6(ip)));
                        }
                        Some(Host::Domain(name)) => {
                            let name = name.trim_end_matches('.').to_ascii_lowercase();
                            prop_assert!(name != "localhost" && !name.ends_with(".localhost"));
                        }
                        None => {}
                    }
                    prop_assert!(DestinationUrl::parse(field, &value, true).is_ok());
                }
                // UpdateWebhook reads the stored form back with private destinations allowed:
                // whatever was accepted once must parse again, to the same URL.
                let again = DestinationUrl::parse(field, url.as_str(), true);
                prop_assert_eq!(
                    again.as_ref().map(DestinationUrl::as_str),
                    Ok(url.as_str()),
                    "the stored form of {:?} does not parse back", value
                );
            }
            Err(error) => prop_assert_eq!(error.field, field),
        }
    }

    #[test]
    fn selections_are_sorted_distinct_nodes_with_at_least_one_event(
        selection in selection(),
    ) {
        let field = "webhook.events";
        let nodes_field = "webhook.events.approval_nodes";
        let expected: Result<(), &str> = match &selection {
            None => Err(field),
            Some(s) => {
                let mut sorted = s.approval_nodes.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if s.approval_nodes.len() > 32
                    || s.approval_nodes.iter().any(|n| !(1..=1000).contains(n))
                    || sorted.len() != s.approval_nodes.len()
                {
                    Err(nodes_field)
                } else if s.approval_nodes.is_empty() && !s.rejection {
                    Err(field)
                } else {
                    Ok(())
                }
            }
        };
        match convert::event_selection(field, selection.as_ref()) {
            Ok(parsed) => {
                prop_assert_eq!(expected, Ok(()));
                let nodes = parsed.approval_nodes();
                prop_assert!(nodes.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
                prop_assert!(nodes.iter().all(|n| (1..=1000).contains(n)));
                prop_assert!(nodes.len() <= 32);
                prop_assert!(!nodes.is_empty() || parsed.rejection(), "at least one event");
                let mut input = selection.map(|s| s.approval_nodes).unwrap_or_default();
                input.sort_unstable();
                prop_assert_eq!(nodes, input.as_slice());
            }
            Err(error) => prop_assert_eq!(Err(error.field.as_str()), expected),
        }
    }

    #[test]
    fn functions_are_the_three_defined_ones(value in enum_value(3)) {
        match convert::function("webhook.function", value) {
            Ok(function) => prop_assert_eq!(pb::Function::from(function) as i32, value),
            Err(error) => {
                prop_assert!(!(1..=3).contains(&value));
                prop_assert_eq!(error.field, "webhook.function");
            }
        }
        match convert::function_filter("function", value) {
            Ok(None) => prop_assert_eq!(value, 0),
            Ok(Some(function)) => prop_assert_eq!(pb::Function::from(function) as i32, value),
            Err(error) => prop_assert_eq!(error.field, "function"),
        }
    }

    #[test]
    fn secrets_are_generated_decoded_or_taken_as_text(value in secret_text()) {
        match Secret::parse_or_generate(&value) {
            Ok(secret) => {
                prop_assert!(!value.contains('\0'));
                let key = secret.as_bytes();
                if value.is_empty() {
                    prop_assert_eq!(key.len(), 32);
                } else if value.starts_with("whsec_") {
                    prop_assert!(webhooks::domain::WHSEC_KEY_BYTES.contains(&key.len()));
                    prop_assert_eq!(secret.to_whsec(), value.clone());
                } else {
                    prop_assert!((16..=256).contains(&value.chars().count()));
                    prop_assert_eq!(key, value.as_bytes());
                    // What the service hands back is accepted again.
                    prop_assert_eq!(Secret::parse_or_generate(&secret.to_whsec()), Ok(secret.clone()));
                }
                let debug = format!("{secret:?}");
                prop_assert_eq!(debug.as_str(), "Secret(<redacted>)");
                let hint = secret.hint();
                prop_assert!(hint.starts_with("whsec_…") && hint.chars().count() == 11);
            }
            Err(SecretError::WrongLength) => {
                prop_assert!(!value.starts_with("whsec_"));
                prop_assert!(!(16..=256).contains(&value.chars().count()));
            }
            Err(SecretError::WrongDecodedLength(n)) => {
                prop_assert!(value.starts_with("whsec_") && !webhooks::domain::WHSEC_KEY_BYTES.contains(&n));
            }
            Err(SecretError::NotBase64) => prop_assert!(value.starts_with("whsec_")),
            Err(SecretError::ContainsNul) => prop_assert!(value.contains('\0')),
        }
    }

    #[test]
    fn update_masks_name_only_writable_fields(paths in mask_paths()) {
        let valid = !paths.is_empty() && paths.iter().all(|p| WRITABLE.contains(&p.as_str()));
        match parse_update_mask(&paths) {
            Ok(fields) => {
                prop_assert!(valid, "accepted {paths:?}");
                prop_assert_eq!(fields.len(), paths.len());
                for (field, path) in fields.iter().zip(&paths) {
                    let expected = match path.as_str() {
                        "name" => UpdateField::Name,
                        "destination_url" => UpdateField::DestinationUrl,
                        "function" => UpdateField::Function,
                        "events" => UpdateField::Events,
                        "events.approval_nodes" => UpdateField::ApprovalNodes,
                        "events.rejection" => UpdateField::Rejection,
                        "description" => UpdateField::Description,
                        _ => UpdateField::DeliverOncePerRequest,
                    };
                    prop_assert_eq!(*field, expected);
                }
            }
            Err(error) => {
                prop_assert!(!valid, "refused {paths:?}: {error}");
                prop_assert_eq!(error.field, "update_mask");
            }
        }
    }
}
