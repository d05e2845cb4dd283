//! Checks of the settings before anything is opened: where the API may be exposed, the TLS
//! files, the tokens. A setting that cannot work fails the start with a message naming it.

use std::net::SocketAddr;

use anyhow::Context;

use crate::api::auth::ConfiguredTokens;
use crate::config::ServeConfig;

/// Refuses to expose the API (the gRPC port, and the console, which serves the same API)
/// anywhere but loopback without authentication or with secrets in plaintext.
pub(super) fn refuse_unsafe_exposure(
    config: &ServeConfig,
    auth_enabled: bool,
    encrypts: bool,
) -> anyhow::Result<()> {
    for addr in std::iter::once(config.grpc_addr).chain(config.console_addr) {
        refuse_exposed_unprotected(addr, auth_enabled, encrypts)?;
    }
    Ok(())
}

/// Warns when authentication or encryption is off (allowed on loopback only).
pub(super) fn warn_unprotected(config: &ServeConfig, auth_enabled: bool, encrypts: bool) {
    if !auth_enabled {
        tracing::warn!(
            "no token configured: the API is open to anyone who can reach {}",
            config.grpc_addr
        );
    }
    if !encrypts {
        tracing::warn!(
            "WEBHOOKS_ENCRYPTION_KEY is not set: webhook secrets are stored in plaintext"
        );
    }
}

/// Refuses to expose the API on `addr`, unless it is loopback, without authentication or with
/// secrets stored in plaintext.
fn refuse_exposed_unprotected(
    addr: SocketAddr,
    auth_enabled: bool,
    encrypts: bool,
) -> anyhow::Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if !auth_enabled {
        anyhow::bail!(
            "refusing to listen on {addr} without authentication: set WEBHOOKS_ADMIN_TOKEN (and \
             WEBHOOKS_INGEST_TOKEN / WEBHOOKS_VIEWER_TOKEN) or WEBHOOKS_REQUIRE_AUTH=true, or \
             listen on 127.0.0.1"
        );
    }
    if !encrypts {
        anyhow::bail!(
            "refusing to listen on {addr} with webhook secrets stored in plaintext: set \
             WEBHOOKS_ENCRYPTION_KEY (base64 of 32 random bytes)"
        );
    }
    Ok(())
}

/// The TLS settings of the gRPC port (and the console's), when a certificate is configured;
/// with `WEBHOOKS_TLS_CLIENT_CA`, clients must present a certificate that CA signed.
pub(super) fn tls_config(
    config: &ServeConfig,
) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        // Client certificates are checked in the TLS handshake: without TLS there is none, and
        // serving plain text would silently drop the gate the operator asked for.
        if config.tls_client_ca.is_some() {
            anyhow::bail!(
                "WEBHOOKS_TLS_CLIENT_CA is set but WEBHOOKS_TLS_CERT and WEBHOOKS_TLS_KEY are                  not: client certificates are checked in the TLS handshake, so the ports must                  speak TLS"
            );
        }
        return Ok(None);
    };
    let cert = std::fs::read(cert)
        .with_context(|| format!("reading WEBHOOKS_TLS_CERT {}", cert.display()))?;
    let key = std::fs::read(key)
        .with_context(|| format!("reading WEBHOOKS_TLS_KEY {}", key.display()))?;
    let mut tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert, key));
    if let Some(path) = &config.tls_client_ca {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading WEBHOOKS_TLS_CLIENT_CA {}", path.display()))?;
        check_client_ca(&pem)
            .with_context(|| format!("WEBHOOKS_TLS_CLIENT_CA {}", path.display()))?;
        tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(pem));
    }
    Ok(Some(tls))
}

/// Checks that `pem` holds at least one certificate and that each can be a trust anchor. tonic
/// skips the ones it cannot parse, and with none left fails only when the server starts
/// serving, with a message about the server's own certificate: this names the client CA file.
fn check_client_ca(pem: &[u8]) -> anyhow::Result<()> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| anyhow::anyhow!("not a PEM file of certificates ({e})"))?;
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("certificate {} is not a usable CA ({e})", index + 1))?;
    }
    if roots.is_empty() {
        anyhow::bail!("holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks)");
    }
    Ok(())
}

/// The configured tokens of each role, trimmed, blanks dropped.
pub(super) fn configured_tokens(config: &ServeConfig) -> ConfiguredTokens {
    let clean = |tokens: &[String]| -> Vec<String> {
        tokens
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    };
    ConfiguredTokens {
        admin: clean(&config.admin_token),
        ingest: clean(&config.ingest_token),
        viewer: clean(&config.viewer_token),
    }
}

/// The operational webhook's destination and secret, when WEBHOOKS_OPERATIONAL_WEBHOOK_URL is
/// set. The secret must be in the `whsec_` form (a receiver's Standard Webhooks library takes
/// it as is). The URL is parsed like the API parses a webhook's; the SSRF guard (private
/// addresses, allowed networks, https) decides on every attempt, as for any webhook.
pub(super) fn operational_webhook(
    config: &ServeConfig,
) -> anyhow::Result<Option<(crate::domain::DestinationUrl, crate::domain::Secret)>> {
    let Some(url) = config.operational_webhook_url.as_deref() else {
        return Ok(None);
    };
    let url = crate::domain::DestinationUrl::parse("WEBHOOKS_OPERATIONAL_WEBHOOK_URL", url, true)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secret = config
        .operational_webhook_secret
        .as_deref()
        .filter(|s| s.starts_with("whsec_"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "WEBHOOKS_OPERATIONAL_WEBHOOK_SECRET: must be set with \
                 WEBHOOKS_OPERATIONAL_WEBHOOK_URL, as whsec_ followed by base64"
            )
        })?;
    let secret = crate::domain::Secret::parse_or_generate(secret)
        .map_err(|e| anyhow::anyhow!("WEBHOOKS_OPERATIONAL_WEBHOOK_SECRET: {e}"))?;
    Ok(Some((url, secret)))
}
