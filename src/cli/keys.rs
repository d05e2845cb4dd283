//! `webhooks keys create|list|revoke` and `webhooks reencrypt`: administration that works on the
//! database directly, so the first admin key can be made before any token exists.

use anyhow::Context;

use crate::config::{KeysAction, KeysCommand, ReencryptConfig};
use crate::domain::{Actor, RequestContext};
use crate::store::{Role, Store, Vault};

/// Runs a `keys` action.
pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    let store = Store::connect_with_ca(
        &command.database.database_url,
        command.database.database_ca.as_deref(),
        1,
    )?;
    // The first key is often made before the service ever ran: create and migrate as serve does.
    crate::store::ensure_database_exists(store.connector()).await?;
    store.migrate().await?;
    match command.action {
        KeysAction::Create { name, role } => {
            let role = Role::parse(&role).context("--role must be admin, ingest or viewer")?;
            let (key, token) = store.create_api_key(name.trim(), role, &operator()).await?;
            println!(
                "created key {} ({}, role {})",
                key.id,
                key.name,
                key.role.as_str()
            );
            println!("token (shown only now; send it as `authorization: Bearer <token>`):");
            println!("{token}");
        }
        KeysAction::List => {
            println!(
                "{:<36}  {:<8}  {:<12}  {:<20}  NAME",
                "ID", "ROLE", "PREFIX", "STATE"
            );
            for key in store.list_api_keys().await? {
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {}", at.date()),
                    None => "active".to_owned(),
                };
                println!(
                    "{:<36}  {:<8}  {:<12}  {:<20}  {}",
                    key.id,
                    key.role.as_str(),
                    key.token_prefix,
                    state,
                    key.name
                );
            }
        }
        KeysAction::Revoke { id } => {
            let id = uuid::Uuid::try_parse(id.trim())
                .context("the key id must be a UUID from `keys list`")?;
            if !store.revoke_api_key(id, &operator()).await? {
                anyhow::bail!("no active key {id}");
            }
            println!("revoked key {id}");
        }
    }
    Ok(())
}

/// Re-seals every secret (signing secrets, custom header values, client keys) with the current
/// key.
pub async fn reencrypt(config: ReencryptConfig) -> anyhow::Result<()> {
    let vault = Vault::from_keys(
        Some(&config.encryption_key),
        &config.encryption_key_previous,
    )
    .map_err(anyhow::Error::msg)?;
    let store = Store::connect_with_ca(
        &config.database.database_url,
        config.database.database_ca.as_deref(),
        1,
    )?
    .with_vault(vault);
    let rewritten = store.reencrypt_secrets(&operator()).await?;
    println!(
        "re-sealed {rewritten} webhook secret(s) with the current key (with their custom header \
         values and client keys)"
    );
    Ok(())
}

/// Who the audit trail names for a command run on the database directly.
fn operator() -> RequestContext {
    RequestContext::of(Actor::database_operator())
}
