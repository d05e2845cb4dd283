//! Properties of the small parsers of untrusted text and numbers: resource ids, timestamps, page
//! sizes, page tokens, durations and the retry schedule (configuration), and Retry-After
//! (destinations' answers).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use time::OffsetDateTime;
use uuid::Uuid;
use webhooks::api::convert::timestamps as wire_timestamps;
use webhooks::delivery::parse_retry_after;
use webhooks::domain::{PageFilters, PageToken, PageTokenKeys, page_size, parse_id, timestamps};
use webhooks::domain::{parse_duration, parse_schedule};

use crate::strategies::{hostile_text, nasty_text, timestamp};

const THIRTY_DAYS: Duration = Duration::from_secs(30 * 86400);

/// Filters as ListDeliveries builds them, from generated values.
/// The page-token key these properties sign with.
fn keys() -> PageTokenKeys {
    PageTokenKeys::new([42u8; 32], [])
}

fn delivery_filters() -> impl Strategy<Value = PageFilters> {
    (
        prop::option::of(any::<u128>().prop_map(Uuid::from_u128)),
        prop::collection::vec(
            prop::sample::select(vec![
                "pending",
                "succeeded",
                "failed",
                "skipped",
                "cancelled",
            ]),
            0..4,
        ),
        prop::option::of(nasty_text(8)),
        prop::option::of(nasty_text(8)),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(webhook, statuses, event_type, request_id, after)| {
            PageFilters::new("ListDeliveries")
                .optional("webhook_id", webhook)
                .set("statuses", statuses)
                .optional("event_type", event_type)
                .optional("request_id", request_id)
                .optional("created_after", after)
                .optional("created_before", None::<i64>)
        })
}

fn id_text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        1 => any::<u128>().prop_map(|n| format!(" {} ", Uuid::from_u128(n).simple())),
        1 => any::<u128>().prop_map(|n| Uuid::from_u128(n).urn().to_string().to_uppercase()),
        1 => any::<u128>().prop_map(|n| format!("{{{}}}", Uuid::from_u128(n))),
        3 => hostile_text(),
    ]
    .boxed()
}

/// Something `parse_duration` should understand, and its value.
fn duration_text() -> impl Strategy<Value = (String, Option<Duration>)> {
    let unit = prop::sample::select(vec![
        ("ms", 0.001),
        ("", 1.0),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
        ("d", 86400.0),
    ]);
    (
        0u64..100_000,
        prop::option::of(0u32..1000),
        unit,
        any::<bool>(),
    )
        .prop_map(|(whole, fraction, (unit, scale), padded)| {
            let number = match fraction {
                Some(f) => format!("{whole}.{f:03}"),
                None => whole.to_string(),
            };
            let value: f64 = number.parse().unwrap_or(f64::NAN);
            // As the parser computes it, so the two agree to the last bit.
            let seconds = if unit == "ms" {
                value / 1000.0
            } else {
                value * scale
            };
            let expected =
                (seconds <= THIRTY_DAYS.as_secs_f64()).then(|| Duration::from_secs_f64(seconds));
            let text = if padded {
                format!(" {number}{unit}\t")
            } else {
                format!("{number}{unit}")
            };
            (text, expected)
        })
}

/// An HTTP date as Retry-After carries it, and the instant it names.
fn http_date() -> impl Strategy<Value = (String, OffsetDateTime)> {
    // 1900-01-01 .. 2200-01-01, whole seconds.
    (-2_208_988_800i64..7_258_118_400).prop_map(|unix| {
        let at = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        (at.format(&format).unwrap_or_default(), at)
    })
}

proptest! {
    #![proptest_config(crate::strategies::config(512))]

    #[test]
    fn ids_are_uuids(value in id_text()) {
        match parse_id("webhook_id", &value) {
            Ok(id) => prop_assert_eq!(Some(id), Uuid::try_parse(value.trim()).ok()),
            Err(error) => {
                prop_assert!(value.is_empty() || Uuid::try_parse(value.trim()).is_err());
                prop_assert_eq!(error.field, "webhook_id");
            }
        }
    }

    #[test]
    fn timestamps_are_valid_instants_from_1970_to_9999(ts in timestamp()) {
        match wire_timestamps::from_proto("occurred_at", &ts) {
            Ok(at) => {
                prop_assert!((1970..=9999).contains(&at.year()));
                prop_assert_eq!(wire_timestamps::to_proto(at), ts);
                prop_assert!(!timestamps::rfc3339(at).is_empty());
            }
            Err(error) => prop_assert_eq!(error.field, "occurred_at"),
        }
    }

    #[test]
    fn page_sizes_are_0_for_the_default_or_1_to_the_maximum(value in any::<i32>()) {
        match page_size(value, 50, 1000) {
            Ok(size) => prop_assert_eq!(size, if value == 0 { 50 } else { i64::from(value) }),
            Err(error) => {
                prop_assert!(!(0..=1000).contains(&value));
                prop_assert_eq!(error.field, "page_size");
            }
        }
    }

    #[test]
    fn page_tokens_round_trip_for_their_own_filters_only(
        after_seq in prop_oneof![0i64..1_000_000, Just(0i64), Just(i64::MAX)],
        issued_for in delivery_filters(),
        presented_with in delivery_filters(),
    ) {
        let token = PageToken { after_seq };
        let text = token.encode(&issued_for, &keys());
        prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(PageToken::parse(&text, &issued_for, &keys()), Ok(Some(token)));
        match PageToken::parse(&text, &presented_with, &keys()) {
            Ok(parsed) => {
                prop_assert_eq!(&issued_for, &presented_with, "a token crossed filters");
                prop_assert_eq!(parsed, Some(token));
            }
            Err(error) => {
                prop_assert_ne!(&issued_for, &presented_with);
                prop_assert_eq!(error.field, "page_token");
                prop_assert!(error.rule.contains("was issued for different filters"));
            }
        }
    }

    #[test]
    fn forged_and_garbled_page_tokens_are_refused(
        after_seq in 0i64..1_000_000,
        filters in delivery_filters(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        garbage in hostile_text(),
    ) {
        // Garbage is never a token (an empty string is the first page).
        match PageToken::parse(&garbage, &filters, &keys()) {
            Ok(None) => prop_assert!(garbage.is_empty()),
            Ok(Some(_)) => prop_assert!(false, "{garbage:?} was taken for a token"),
            Err(error) => prop_assert_eq!(error.field, "page_token"),
        }
        // A genuine token with any byte changed is refused: position, digest and tag are all
        // under the tag.
        let mut bytes = URL_SAFE_NO_PAD
            .decode(PageToken { after_seq }.encode(&filters, &keys()))
            .expect("tokens are base64url");
        for (index, mask) in &flips {
            let at = index.index(bytes.len());
            bytes[at] ^= mask;
        }
        let forged = URL_SAFE_NO_PAD.encode(&bytes);
        // Flips may cancel out (the same byte flipped twice with the same mask).
        let unchanged = {
            let original = URL_SAFE_NO_PAD
                .decode(PageToken { after_seq }.encode(&filters, &keys()))
                .expect("tokens are base64url");
            original == bytes
        };
        match PageToken::parse(&forged, &filters, &keys()) {
            Ok(Some(token)) => {
                prop_assert!(unchanged, "a forged token was accepted");
                prop_assert_eq!(token.after_seq, after_seq);
            }
            Ok(None) => prop_assert!(false, "a forged token read as the first page"),
            Err(error) => prop_assert_eq!(error.field, "page_token"),
        }
    }

    #[test]
    fn durations_parse_to_their_value_up_to_30_days((text, expected) in duration_text()) {
        let parsed = parse_duration(&text);
        match expected {
            Some(expected) => {
                let parsed = parsed.map_err(TestCaseError::fail)?;
                let error = parsed.abs_diff(expected);
                prop_assert!(error <= Duration::from_micros(1), "{text:?}: {parsed:?}");
            }
            None => prop_assert!(parsed.is_err(), "{text:?} is over 30 days"),
        }
    }

    #[test]
    fn hostile_durations_and_schedules_never_panic_and_stay_in_range(
        text in prop_oneof![
            hostile_text(),
            "[0-9.,a-z ]{0,30}",
            "-?[0-9]{1,400}(\\.[0-9]{0,400})?(ms|s|m|h|d)?",
        ],
    ) {
        if let Ok(duration) = parse_duration(&text) {
            prop_assert!(duration <= THIRTY_DAYS, "{text:?} gave {duration:?}");
        }
        match parse_schedule(&text) {
            Ok(schedule) => {
                prop_assert!(schedule.0.iter().all(|d| *d <= THIRTY_DAYS));
                let entries = if text.trim().is_empty() { 0 } else { text.split(',').count() };
                prop_assert_eq!(schedule.0.len(), entries);
                for (part, delay) in text.split(',').zip(&schedule.0) {
                    prop_assert_eq!(parse_duration(part.trim()), Ok(*delay));
                }
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    #[test]
    fn schedules_are_lists_of_durations(
        parts in prop::collection::vec(duration_text(), 1..6),
    ) {
        let text = parts.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(",");
        let expected: Option<Vec<Duration>> = parts.iter().map(|(_, d)| *d).collect();
        match (parse_schedule(&text), expected) {
            (Ok(schedule), Some(expected)) => {
                prop_assert_eq!(schedule.0.len(), expected.len());
                for (delay, wanted) in schedule.0.iter().zip(&expected) {
                    prop_assert!(delay.abs_diff(*wanted) <= Duration::from_micros(1));
                }
                prop_assert_eq!(schedule.delay_after(0), None);
                prop_assert_eq!(schedule.delay_after(expected.len() + 1), None);
            }
            (Err(_), None) => {}
            (got, wanted) => prop_assert!(false, "{text:?}: {got:?} but expected {wanted:?}"),
        }
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date(
        seconds in any::<u64>(),
        (date, at) in http_date(),
        garbage in hostile_text(),
    ) {
        prop_assert_eq!(
            parse_retry_after(&seconds.to_string()),
            Some(Duration::from_secs(seconds))
        );
        let before = OffsetDateTime::now_utc();
        let parsed = parse_retry_after(&date);
        let after = OffsetDateTime::now_utc();
        // HTTP dates before 1970 (which httpdate, like most HTTP stacks, does not represent) are
        // ignored: the retry schedule decides, as for any value that is not understood.
        if at.year() < 1970 {
            prop_assert_eq!(parsed, None, "{}", date);
            return Ok(());
        }
        let Some(wait) = parsed else {
            return Err(TestCaseError::fail(format!("{date:?} was not understood")));
        };
        // The wait is the time until the date, or zero for a date in the past.
        let longest = Duration::try_from(at - before).unwrap_or(Duration::ZERO);
        let shortest = Duration::try_from(at - after).unwrap_or(Duration::ZERO);
        prop_assert!(shortest <= wait && wait <= longest, "{date}: {wait:?}");
        // Anything else is a delay of some length or nothing, never a panic.
        let _ = parse_retry_after(&garbage);
        let _ = parse_retry_after(&format!("{date}{garbage}"));
    }
}
