//! What only the API suite needs besides `testkit`: the `webhooks` binary's offline commands
//! (`reencrypt`, and the others `webhooks_binary` runs) on a test's database.

/// Runs the `webhooks` binary with `args` (and no DATABASE_URL from the environment), asserts it
/// succeeded, and returns what it printed.
pub fn webhooks_binary(args: &[&str]) -> String {
    let output = std::process::Command::new(testkit::webhooks_bin!())
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
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
pub fn reencrypt(database_url: &str, new: &str, old: &str) -> String {
    webhooks_binary(&[
        "reencrypt",
        "--database-url",
        database_url,
        "--encryption-key",
        new,
        "--encryption-key-previous",
        old,
    ])
}

/// The context the direct-database commands (`webhooks keys`) record, for tests that call the
/// store as they do.
pub fn operator() -> webhooks::domain::RequestContext {
    webhooks::domain::RequestContext::of(webhooks::domain::Actor::database_operator())
}
