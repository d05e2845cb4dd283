//! Starting and stopping: SIGTERM ends the process cleanly; `serve` and `migrate` create a
//! missing database, and migrating again changes nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use webhooks::proto::v1 as pb;

use testkit::{Service, TestDatabase, run_webhooks, withdrawal_approved, withdrawal_webhook};

use crate::support::{BIN, answering_after};

/// How long SIGTERM may take to stop the service.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The tables the migrations in `migrations/` create (every `CREATE TABLE`), plus refinery's
/// history table, and how many migration files there are.
fn expected_schema() -> (HashSet<String>, usize) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut tables = HashSet::from(["refinery_schema_history".to_owned()]);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("migrations/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|ext| ext != "sql") {
            continue;
        }
        files += 1;
        let sql = std::fs::read_to_string(&path).expect("a migration is readable");
        for line in sql.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["CREATE", "TABLE", rest @ ..] = words.as_slice() {
                let name = match rest {
                    ["IF", "NOT", "EXISTS", name, ..] | [name, ..] => *name,
                    [] => continue,
                };
                tables.insert(name.trim_end_matches('(').to_owned());
            }
        }
    }
    assert!(
        files > 0 && tables.len() > 1,
        "no migrations found in {}",
        dir.display()
    );
    (tables, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_exits_zero() {
    let started = Instant::now();
    let database = TestDatabase::fresh();
    // The receiver holds each request for a second, so an attempt is in flight at SIGTERM.
    let receiver = answering_after(1000, 1000).await;
    let mut service = Service::start(
        BIN,
        &database,
        &[
            "--allow-private-destinations",
            "true",
            "--poll-interval",
            "100ms",
            "--request-timeout",
            "5s",
        ],
    )
    .await;

    // A connected client (its channel stays open across the SIGTERM), and one delivery whose
    // attempt is in flight when the signal arrives.
    let mut admin = service.admin().await;
    admin
        .create_webhook(withdrawal_webhook(
            "sigterm",
            &receiver.url("/hooks/sigterm"),
        ))
        .await
        .expect("webhook created");
    let published = service
        .ingest()
        .await
        .publish_event(withdrawal_approved("sigterm-1", "WD-sigterm-1"))
        .await
        .expect("event published")
        .into_inner();
    let delivery_id: uuid::Uuid = published.delivery_ids[0].parse().expect("a UUID");
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.in_flight() == 0 {
        assert!(
            Instant::now() < deadline,
            "the delivery never reached the receiver"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let signalled = Instant::now();
    service.sigterm();
    let status = service.wait_exit(STOP_DEADLINE).await.unwrap_or_else(|| {
        panic!(
            "webhooks serve was still running {STOP_DEADLINE:?} after SIGTERM; log:\n{}",
            service.log()
        )
    });
    let stop_time = signalled.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must end the process with status 0, got {status}; log:\n{}",
        service.log()
    );
    assert!(
        std::net::TcpStream::connect_timeout(&service.addr, Duration::from_millis(500)).is_err(),
        "the gRPC port still accepts connections after exit"
    );
    // The attempt in flight was let finish and recorded before exiting.
    let row = database
        .connect()
        .await
        .query_one(
            "SELECT status, attempt_count FROM deliveries WHERE id = $1",
            &[&delivery_id],
        )
        .await
        .expect("the delivery is stored");
    let (delivery_status, attempts): (String, i32) = (row.get(0), row.get(1));
    assert_eq!(
        (delivery_status.as_str(), attempts),
        ("succeeded", 1),
        "the attempt in flight at SIGTERM was not recorded; log:\n{}",
        service.log()
    );
    assert_eq!(receiver.count(), 1, "exactly one request was sent");
    // The connected client sees the service gone, not a hang.
    let after = tokio::time::timeout(
        Duration::from_secs(5),
        admin.list_webhooks(pb::ListWebhooksRequest::default()),
    )
    .await
    .expect("a call after exit fails fast");
    assert!(after.is_err(), "a call succeeded after exit: {after:?}");

    drop(service);
    database.drop_database().await;
    eprintln!(
        "sigterm_stops_gracefully_and_exits_zero: exited {status} {stop_time:.2?} after SIGTERM; \
         test took {:.1?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_creates_a_missing_database_and_migrate_is_idempotent() {
    let started = Instant::now();
    let (expected, migration_files) = expected_schema();

    // `serve` on a database that does not exist creates and migrates it.
    let served = TestDatabase::fresh();
    assert!(!served.exists().await, "a fresh name exists already");
    let mut service = Service::start(BIN, &served, &[]).await;
    assert!(served.exists().await, "serve did not create its database");
    let tables = served.tables().await;
    assert!(
        tables.is_superset(&expected),
        "serve left tables missing: {:?}",
        expected.difference(&tables).collect::<Vec<_>>()
    );
    service.sigterm();
    let status = service.wait_exit(STOP_DEADLINE).await;
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "serve did not stop cleanly"
    );
    drop(service);
    // Migrating a database the service already migrated changes nothing.
    let history = schema_history(&served).await;
    let (status, output) = run_webhooks(
        BIN,
        &["migrate", "--database-url", &served.url],
        Duration::from_secs(60),
    )
    .await;
    assert!(status.success(), "migrate after serve: {status}\n{output}");
    assert_eq!(schema_history(&served).await, history);

    // `migrate` creates a missing database, and running it twice is harmless.
    let migrated = TestDatabase::fresh();
    assert!(!migrated.exists().await, "a fresh name exists already");
    let mut histories = Vec::new();
    for run in 1..=2 {
        let (status, output) = run_webhooks(
            BIN,
            &["migrate", "--database-url", &migrated.url],
            Duration::from_secs(60),
        )
        .await;
        assert!(
            status.success(),
            "migrate run {run} exited with {status}:\n{output}"
        );
        assert!(
            migrated.exists().await,
            "migrate did not create the database"
        );
        let tables = migrated.tables().await;
        assert!(
            tables.is_superset(&expected),
            "after migrate run {run}, tables are missing: {:?}",
            expected.difference(&tables).collect::<Vec<_>>()
        );
        histories.push(schema_history(&migrated).await);
    }
    assert_eq!(
        histories[0].len(),
        migration_files,
        "not every migration in migrations/ was applied: {:?}",
        histories[0]
    );
    assert_eq!(
        histories[0], histories[1],
        "the second migrate changed the migration history"
    );
    let without_times = |h: &[(i32, String, String, String)]| -> Vec<(i32, String, String)> {
        h.iter()
            .map(|(v, name, _, checksum)| (*v, name.clone(), checksum.clone()))
            .collect()
    };
    assert_eq!(
        without_times(&histories[0]),
        without_times(&history),
        "serve and migrate applied different migrations"
    );

    served.drop_database().await;
    migrated.drop_database().await;
    eprintln!(
        "serve_creates_a_missing_database_and_migrate_is_idempotent: {:.1?}",
        started.elapsed()
    );
}

/// The applied migrations, (version, name, applied_on, checksum), in order.
async fn schema_history(database: &TestDatabase) -> Vec<(i32, String, String, String)> {
    database
        .connect()
        .await
        .query(
            "SELECT version, name, applied_on, checksum FROM refinery_schema_history \
             ORDER BY version",
            &[],
        )
        .await
        .expect("refinery_schema_history is readable")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}
