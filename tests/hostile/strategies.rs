//! Generators of hostile input: arbitrary Unicode, control characters, invisible and bidi
//! characters, strings just around every length limit, huge strings, and numbers at the edges.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// The configuration of every property here: `cases` cases, and no regression files (a failure
/// prints its minimal input; add it as a plain test if it should stay).
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Characters that break naive code: NUL and other controls, DEL, C1 controls, bidi overrides,
/// zero-width and byte-order marks, line and paragraph separators, combining marks, multi-byte
/// letters and emoji, and the separators our own formats use.
pub fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just('\0'),
        Just('\t'),
        Just('\n'),
        Just('\r'),
        Just('\u{1b}'),
        Just('\u{7f}'),
        Just('\u{85}'),
        Just('\u{a0}'),
        Just('\u{200b}'),
        Just('\u{202e}'),
        Just('\u{2028}'),
        Just('\u{feff}'),
        Just('\u{301}'),
        Just('\u{fffd}'),
        Just('é'),
        Just('漢'),
        Just('😀'),
        Just('\u{10ffff}'),
        Just(' '),
        Just('"'),
        Just('\\'),
        Just('\''),
        Just('%'),
        Just(','),
        Just('.'),
        Just(':'),
        Just('@'),
        Just('/'),
        Just('a'),
        Just('Z'),
        Just('0'),
        Just('9'),
    ]
}

/// A string of `nasty_char`s.
pub fn nasty_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(nasty_char(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

/// One character repeated to a length just around a limit (all the service's limits are in
/// there), so off-by-one and bytes-versus-characters mistakes show.
pub fn boundary_text() -> impl Strategy<Value = String> {
    let lengths = prop_oneof![
        0usize..=3,
        14usize..=17,
        22usize..=26,
        198usize..=202,
        254usize..=258,
        318usize..=322,
        998usize..=1002,
        2046usize..=2050,
    ];
    let fill = prop_oneof![Just('a'), Just('é'), Just('😀'), Just(' '), Just('7')];
    (fill, lengths).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect())
}

/// Far over every limit: tens of thousands of characters.
pub fn huge_text() -> impl Strategy<Value = String> {
    (nasty_char(), 10_000usize..40_000).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect())
}

/// Any of the above, or arbitrary Unicode.
pub fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>(),
        3 => nasty_text(24),
        1 => "[ -~]{0,40}",
        2 => boundary_text(),
        1 => huge_text(),
    ]
    .boxed()
}

/// Like [`hostile_text`] but no larger than a few thousand characters, so whole requests stay
/// under every size limit of the running service and the end-to-end test stays quick.
pub fn hostile_text_bounded() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>(),
        3 => nasty_text(24),
        1 => "[ -~]{0,40}",
        2 => boundary_text(),
    ]
    .boxed()
}

/// Characters that pass shape checks but may break what comes after them (Postgres refuses NUL
/// in text, JSON must escape quotes and controls, bidi overrides spoof logs).
pub fn poison_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => Just('\0'),
        1 => Just('\u{7f}'),
        1 => Just('\u{1b}'),
        1 => Just('\u{202e}'),
        1 => Just('\u{feff}'),
        1 => Just('\n'),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('😀'),
    ]
}

/// `valid` with one [`poison_char`] slipped in somewhere.
pub fn poisoned(valid: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (valid, poison_char(), any::<prop::sample::Index>())
        .prop_map(|(value, poison, at)| {
            let mut chars: Vec<char> = value.chars().collect();
            let at = at.index(chars.len() + 1);
            chars.insert(at, poison);
            chars.into_iter().collect()
        })
        .boxed()
}

/// A field that is usually sensible and sometimes hostile: `valid` most of the time, else
/// `valid` with a poison character in it, else `hostile`.
pub fn mostly(
    valid: BoxedStrategy<String>,
    hostile: BoxedStrategy<String>,
) -> BoxedStrategy<String> {
    prop_oneof![4 => valid.clone(), 1 => poisoned(valid), 1 => hostile].boxed()
}

/// A field that is nearly always sensible: 3 times in 14 poisoned, once hostile. Requests
/// built from such fields mostly pass validation, so the odd bad value reaches the store.
pub fn rarely(
    valid: BoxedStrategy<String>,
    hostile: BoxedStrategy<String>,
) -> BoxedStrategy<String> {
    prop_oneof![10 => valid.clone(), 3 => poisoned(valid), 1 => hostile].boxed()
}

/// An `i32` enum value: the defined ones, their neighbours and the extremes.
pub fn enum_value(defined: i32) -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => 0..=defined,
        1 => Just(defined + 1),
        1 => Just(-1),
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        1 => any::<i32>(),
    ]
}

/// A `u32` around the approver-level range 1..=1000.
pub fn node() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 1u32..=1000,
        1 => Just(0u32),
        1 => Just(1001u32),
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

/// A protobuf timestamp: sensible, at the edges of 1970..=9999, or nonsense.
pub fn timestamp() -> impl Strategy<Value = prost_types::Timestamp> {
    let seconds = prop_oneof![
        4 => 0i64..4_000_000_000,
        1 => Just(-1i64),
        1 => Just(253_402_300_799i64), // 9999-12-31T23:59:59Z
        1 => Just(253_402_300_800i64), // 10000-01-01
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => any::<i64>(),
    ];
    let nanos = prop_oneof![
        4 => 0i32..1_000_000_000,
        1 => Just(-1i32),
        1 => Just(1_000_000_000i32),
        1 => any::<i32>(),
    ];
    (seconds, nanos).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos })
}

/// A decimal amount: well formed (including zero, long and edge forms) or not.
pub fn amount() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[0-9]{1,6}(\\.[0-9]{1,4})?",
        1 => "[0-9]{28,32}(\\.[0-9]{16,20})?",
        1 => Just("0".to_owned()),
        1 => Just("0.00".to_owned()),
        1 => Just(String::new()),
        1 => prop::sample::select(vec![
            "-1", "1e5", "1.", ".5", "1,5", "NaN", "inf", "+1", " 1", "1 ", "١٢٣", "0x10", "1..2",
            "1.2.3", "٫", "1_000",
        ])
        .prop_map(str::to_owned),
        1 => hostile_text_bounded(),
    ]
    .boxed()
}

/// A currency code: valid, almost valid, or hostile.
pub fn currency() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[A-Z]{3}",
        1 => Just(String::new()),
        1 => "[a-zA-Z]{2,4}",
        1 => hostile_text_bounded(),
    ]
    .boxed()
}

/// An email: plausible, empty, or hostile.
pub fn email() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z]{1,10}@[a-z]{1,10}\\.com",
        1 => Just(String::new()),
        1 => hostile_text_bounded(),
    ]
    .boxed()
}

/// A required id-like field: usually a short id, sometimes blank, long or hostile.
pub fn id_text() -> BoxedStrategy<String> {
    mostly("[A-Z]{1,3}-[0-9]{1,6}".boxed(), hostile_text_bounded())
}
