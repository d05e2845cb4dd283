//! `docs/operations.md`: the configuration table is `webhooks serve --help`, the examples run
//! (grpcurl against a real service, `webhooks` as the real binary), and the metrics listed are
//! the ones the service defines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::examples::{self, DOC_DATABASE_URL, Target};
use crate::markdown::{self, unquote};
use testkit::pg_cluster::{Cluster, Transport};
use testkit::{Receiver, TestDatabase};

use crate::support::{self, TestApp};

const PAGE: &str = "operations.md";
/// The PostgreSQL server of the page's TLS examples, replaced by the test cluster's.
const DOC_TLS_SERVER: &str = "localhost:5433";
/// The CA file of the page's TLS examples, replaced by the test cluster's.
const DOC_DATABASE_CA: &str = "/etc/webhooks/postgres-ca.pem";
const CONFIG_HEADER: &str = "| flag | environment variable | default | meaning |";

/// One option of a `--help` text.
#[derive(Debug, PartialEq, Eq)]
struct HelpOption {
    env: Option<String>,
    default: Option<String>,
}

/// The options of a clap `--help` text (long or short form), `--help` and `--version` excepted.
fn parse_help(help: &str) -> BTreeMap<String, HelpOption> {
    let mut options = BTreeMap::new();
    let starts: Vec<(usize, String)> = help
        .lines()
        .scan(0usize, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .filter_map(|(at, line)| {
            let trimmed = line.trim_start();
            let trimmed = trimmed.strip_prefix("-h, ").unwrap_or(trimmed);
            let trimmed = trimmed.strip_prefix("-V, ").unwrap_or(trimmed);
            let flag = trimmed.strip_prefix("--")?;
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some((at, format!("--{name}")))
        })
        .collect();
    for (i, (at, flag)) in starts.iter().enumerate() {
        if flag == "--help" || flag == "--version" {
            continue;
        }
        let end = starts
            .get(i + 1)
            .map(|(next, _)| *next)
            .unwrap_or(help.len());
        let text = &help[*at..end];
        let bracketed = |key: &str| {
            text.find(&format!("[{key}: ")).map(|start| {
                let rest = &text[start + key.len() + 3..];
                rest[..rest.find(']').unwrap_or(rest.len())].to_owned()
            })
        };
        let env = bracketed("env").map(|e| e.split('=').next().unwrap_or_default().to_owned());
        // clap shows an empty default as `""`.
        let default = bracketed("default").map(|d| if d == "\"\"" { String::new() } else { d });
        options.insert(flag.clone(), HelpOption { env, default });
    }
    options
}

/// `webhooks <args>` with none of the service's settings in its environment.
async fn webhooks_help(args: &[&str]) -> String {
    let run = support::run_without(
        env!("CARGO_BIN_EXE_webhooks"),
        args,
        b"",
        &[],
        &examples::service_settings(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "`webhooks {}` failed: {}",
        args.join(" "),
        run.describe()
    );
    run.stdout
}

#[tokio::test]
async fn the_configuration_table_is_the_serve_help() {
    let doc = markdown::load(PAGE);
    let rows = markdown::table(&doc, CONFIG_HEADER);
    let mut documented = BTreeMap::new();
    for row in &rows {
        assert_eq!(row.len(), 4, "{PAGE}: malformed configuration row {row:?}");
        let default = match row[2].as_str() {
            "unset" => None,
            "empty" => Some(String::new()),
            cell => Some(unquote(cell).to_owned()),
        };
        let previous = documented.insert(
            unquote(&row[0]).to_owned(),
            HelpOption {
                env: Some(unquote(&row[1]).to_owned()),
                default,
            },
        );
        assert!(previous.is_none(), "{PAGE}: {} is listed twice", row[0]);
    }
    let serve = parse_help(&webhooks_help(&["serve", "--help"]).await);
    assert!(
        serve.len() >= 10 && serve.contains_key("--grpc-addr"),
        "could not parse `webhooks serve --help`: {serve:?}"
    );
    for (flag, option) in &serve {
        let row = documented.get(flag).unwrap_or_else(|| {
            panic!(
                "{PAGE}'s configuration table lacks {flag} ({option:?}), which `webhooks serve \
                 --help` lists: add a row"
            )
        });
        assert_eq!(
            row, option,
            "{PAGE}: the row of {flag} does not match `webhooks serve --help` (env, default; \
             write `unset` when there is no default, `empty` for an empty one)"
        );
    }
    for flag in documented.keys() {
        assert!(
            serve.contains_key(flag),
            "{PAGE} documents {flag}, which `webhooks serve --help` does not list"
        );
    }
    // `webhooks migrate` takes a subset, with the same names and defaults.
    let migrate = parse_help(&webhooks_help(&["migrate", "--help"]).await);
    assert!(
        !migrate.is_empty(),
        "could not parse `webhooks migrate --help`"
    );
    for (flag, option) in &migrate {
        assert_eq!(
            documented.get(flag),
            Some(option),
            "{PAGE}: `webhooks migrate` takes {flag} ({option:?}), not as the table says"
        );
        assert!(
            doc.text.contains(&format!("`{flag}`")),
            "{PAGE} does not mention {flag}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_example_runs_as_documented() {
    support::require_tool("bash", &["--version"]).await;
    support::require_tool("grpcurl", &["-version"]).await;
    let doc = markdown::load(PAGE);
    let examples = examples::examples(&doc);
    assert!(
        examples.iter().any(|e| e.block.marker() == "grpcurl")
            && examples.iter().any(|e| e.block.marker() == "webhooks"),
        "{PAGE} should have grpcurl and webhooks examples"
    );
    let receiver = Receiver::start().await;
    let app = TestApp::spawn(&[]).await;
    let migrated = TestDatabase::fresh();
    // The `database=tls` examples run against a PostgreSQL that speaks TLS only, with a
    // certificate for `localhost` from a throwaway CA (the page's CA file and port).
    let cluster = Cluster::start(Transport::TlsOnly);
    let binary = Path::new(env!("CARGO_BIN_EXE_webhooks"));
    let target = Target {
        addr: app.addr.to_string(),
        receiver: receiver.url(""),
        database_url: migrated.url.clone(),
        bin_dir: binary
            .parent()
            .expect("the binary is in a directory")
            .display()
            .to_string(),
        replacements: vec![
            (
                DOC_TLS_SERVER.to_owned(),
                format!("localhost:{}", cluster.port),
            ),
            (DOC_DATABASE_CA.to_owned(), cluster.ca.display().to_string()),
        ],
    };
    let vars = support::token_vars();
    let tls_examples = examples
        .iter()
        .filter(|e| e.block.attr("database") == Some("tls"))
        .count();
    assert!(
        tls_examples > 0,
        "{PAGE} should connect to PostgreSQL over TLS in a `database=tls` example"
    );
    let mut migrations_run = false;
    for example in &examples {
        examples::run_example(&doc, example, &target, &vars).await;
        if example.block.attr("database") == Some("tls") {
            assert!(
                example.block.code.contains(DOC_TLS_SERVER)
                    && example.block.code.contains("sslmode=verify-full"),
                "{}: a TLS example connects to {DOC_TLS_SERVER} with sslmode=verify-full",
                example.block.at(&doc)
            );
            continue;
        }
        if example.block.code.contains(" migrate") {
            assert!(
                example.block.code.contains(DOC_DATABASE_URL),
                "{}: the migrate example should name the database as {DOC_DATABASE_URL}",
                example.block.at(&doc)
            );
            migrations_run = true;
        }
    }
    assert!(migrations_run, "{PAGE} has no `webhooks migrate` example");
    // The migrate example created the database and applied every migration in migrations/.
    let files = std::fs::read_dir(markdown::root().join("migrations"))
        .expect("migrations/ is readable")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        .count();
    let client = migrated.connect().await;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .expect("the migrate example recorded its migrations")
        .get(0);
    assert_eq!(
        applied as usize, files,
        "`webhooks migrate` applied {applied} migrations, migrations/ holds {files}"
    );
    drop(client);
    migrated.drop_database().await;
    app.stop().await;
}

/// The metric names in the given text (`webhooks_...`).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.match_indices("webhooks_")
        .filter(|(i, _)| {
            *i == 0
                || !text[..*i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        })
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| name.len() > "webhooks_".len())
        .collect()
}

#[test]
fn the_metrics_section_lists_the_metrics_the_service_defines() {
    let doc = markdown::load(PAGE);
    let section = markdown::section(&doc, "## Metrics");
    assert!(
        section.contains("WEBHOOKS_METRICS_ADDR"),
        "{PAGE}: the Metrics section must say where metrics are exposed"
    );
    let documented: BTreeSet<String> = metric_names(section)
        .into_iter()
        .filter(|name| !name.starts_with("webhooks_test"))
        .collect();
    for required in [
        "webhooks_deliveries_total",
        "webhooks_attempt_duration_seconds",
        "webhooks_queue_depth",
        "webhooks_queue_oldest_due_seconds",
        "webhooks_events_published_total",
        "webhooks_open_watchers",
        "webhooks_db_pool_in_use",
    ] {
        assert!(
            documented.contains(required),
            "{PAGE}: the Metrics section does not list {required}"
        );
    }
    let source_path = markdown::root().join("src/metrics.rs");
    let source = std::fs::read_to_string(&source_path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): the Metrics section of {PAGE} is checked against it",
            source_path.display()
        )
    });
    let defined: BTreeSet<String> = metric_names(&source)
        .into_iter()
        .filter(|name| source.contains(&format!("\"{name}\"")))
        .collect();
    for name in &documented {
        assert!(
            defined.contains(name),
            "{PAGE} lists the metric {name}, which src/metrics.rs does not define (defined: {defined:?})"
        );
    }
    for name in &defined {
        assert!(
            documented.contains(name),
            "src/metrics.rs defines the metric {name}, which the Metrics section of {PAGE} does not list"
        );
    }
}

#[test]
fn help_parsing() {
    let long = "Options:\n      --grpc-addr <GRPC_ADDR>\n          Address\n          \n          [env: WEBHOOKS_GRPC_ADDR=]\n          [default: 127.0.0.1:50051]\n\n      --metrics-addr <METRICS_ADDR>\n          Metrics\n          [env: WEBHOOKS_METRICS_ADDR=]\n\n  -h, --help\n          Print help\n";
    let parsed = parse_help(long);
    assert_eq!(parsed.len(), 2, "{parsed:?}");
    assert_eq!(
        parsed["--grpc-addr"],
        HelpOption {
            env: Some("WEBHOOKS_GRPC_ADDR".into()),
            default: Some("127.0.0.1:50051".into())
        }
    );
    assert_eq!(parsed["--metrics-addr"].default, None);
    let short = "Options:\n      --database-url <DATABASE_URL>  URL [env: DATABASE_URL=] [default: postgres://x/y]\n  -h, --help  Print help\n";
    assert_eq!(
        parse_help(short)["--database-url"].default.as_deref(),
        Some("postgres://x/y")
    );
    assert_eq!(
        metric_names("`webhooks_queue_depth` and webhooks_x{outcome}; /webhooks_no"),
        ["webhooks_queue_depth", "webhooks_x"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

/// The alert rules of "Audit and alerts": promtool accepts them, and every metric they use is
/// one the service defines.
#[tokio::test]
async fn the_alert_rules_are_valid_and_use_real_metrics() {
    support::require_tool("promtool", &["--version"]).await;
    let doc = markdown::load(PAGE);
    let blocks: Vec<_> = doc
        .blocks
        .iter()
        .filter(|b| b.lang == "yaml" && b.marker() == "prometheus-rules")
        .collect();
    assert_eq!(
        blocks.len(),
        1,
        "{PAGE}: one ```yaml prometheus-rules block"
    );
    let rules = &blocks[0].code;
    let source = std::fs::read_to_string(markdown::root().join("src/metrics.rs"))
        .expect("src/metrics.rs is readable");
    let used = metric_names(rules);
    assert!(!used.is_empty(), "the rules use no webhooks_ metric");
    for name in &used {
        assert!(
            source.contains(&format!("\"{name}\"")),
            "{PAGE}: the alert rules use {name}, which src/metrics.rs does not define"
        );
    }
    let dir = support::scratch_dir("rules");
    let path = support::write(&dir, "rules.yml", rules);
    let path = path.to_string_lossy().into_owned();
    let result = support::run(
        "promtool",
        &["check", "rules", &path],
        b"",
        &[],
        std::time::Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        result.code,
        Some(0),
        "promtool refuses the rules of {PAGE}: {}",
        result.describe()
    );
}
