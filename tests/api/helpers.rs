//! What only the API suite needs besides `testkit`: the `webhooks` binary's offline commands
//! (`reencrypt`, and the others `webhooks_binary` runs) on a test's database.

/// Runs the `webhooks` binary with `args` (and no DATABASE_URL from the environment), asserts it
/// succeeded, and returns what it printed. Awaited, not blocking: the test's service runs on the
/// same runtime, and a command waiting on a lock one of its tasks holds (the audit chain's head)
/// would otherwise wait for ever.
pub async fn webhooks_binary(args: &[&str]) -> String {
    let output = tokio::process::Command::new(testkit::webhooks_bin!())
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `webhooks reencrypt` on `database_url`, from `old` to `new` (base64 keys), asserts it
/// succeeded, and returns what it printed.
pub async fn reencrypt(database_url: &str, new: &str, old: &str) -> String {
    webhooks_binary(&[
        "reencrypt",
        "--database-url",
        database_url,
        "--encryption-key",
        new,
        "--encryption-key-previous",
        old,
    ])
    .await
}

/// The context the direct-database commands (`webhooks keys`) record, for tests that call the
/// store as they do.
pub fn operator() -> webhooks::domain::RequestContext {
    webhooks::domain::RequestContext::of(webhooks::domain::Actor::database_operator())
}
