//! What a destination may ask for beyond the signature: its own request headers (a partner
//! gateway's `Authorization` or `X-Api-Key`), a client certificate for mutual TLS, and a private
//! CA its server certificate is verified against.
//!
//! Header values and private keys are credentials: their `Debug` never shows them, they are
//! sealed at rest by the store, and responses only ever carry hints ([`CustomHeader::hint`],
//! [`CertificateInfo`]). Everything is checked here, when a webhook is saved, so a delivery
//! never finds out about a bad header or a key that does not match its certificate.

use std::fmt;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

use super::ValidationError;

/// The most custom headers a webhook may have.
pub const MAX_HEADERS: usize = 20;
/// The longest header name, in bytes.
pub const MAX_HEADER_NAME: usize = 64;
/// The longest header value, in bytes.
pub const MAX_HEADER_VALUE: usize = 4096;
/// The most bytes of names and values together: far below what servers accept in a request
/// head (8 KiB to 64 KiB) once the service's own headers are added.
pub const MAX_HEADERS_TOTAL: usize = 16384;
/// The largest certificate PEM (a client chain or a CA bundle), in bytes.
pub const MAX_CERTIFICATE_PEM: usize = 65536;
/// The largest private key PEM, in bytes (an RSA-8192 PKCS#8 key is about 6.5 KB).
pub const MAX_KEY_PEM: usize = 16384;
/// The most certificates in a private CA.
pub const MAX_CA_CERTIFICATES: usize = 10;

/// Header names a webhook cannot set, lower-case. The service sets some itself (the Standard
/// Webhooks headers, the body's type and length, the user agent); the others govern the
/// connection rather than the request (hop-by-hop, RFC 9110 §7.6.1), and one sent by a webhook
/// would break framing or smuggle a second request. `proxy-*` names are refused as well.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "user-agent",
    "expect",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Whether a webhook may not set the header `name` (any case).
pub fn is_reserved_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-")
}

/// A request header a webhook adds to every attempt. The value is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomHeader {
    name: String,
    value: String,
}

impl CustomHeader {
    /// The name, as the admin spelled it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value: for the request only, never for a response, a log or the history.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Enough to recognise the value, never to use it: `••••` and the last four characters
    /// when there are at least 16 (fewer would give away too large a share of a short value),
    /// then the length, e.g. `••••a1b2 (43 characters)`.
    pub fn hint(&self) -> String {
        let count = self.value.chars().count();
        if count >= 16 {
            let tail: String = self.value.chars().skip(count - 4).collect();
            format!("••••{tail} ({count} characters)")
        } else {
            format!("•••• ({count} characters)")
        }
    }
}

impl fmt::Debug for CustomHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomHeader({}: <redacted>)", self.name)
    }
}

/// A webhook's custom headers, valid as a set (unique names, within the size limits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomHeaders(Vec<CustomHeader>);

/// A header name is an HTTP token (RFC 9110 §5.6.2).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl CustomHeaders {
    /// No headers.
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks headers as given (name, value) under `field` (`webhook.headers`); errors name
    /// `field[i].name` or `field[i].value`. An empty value keeps the value of the header of the
    /// same name (any case) in `current`: values are never returned, so an edit need not retype
    /// them; without such a header (and always on create, `current` = `None`) it is refused.
    pub fn parse(
        field: &str,
        input: &[(String, String)],
        current: Option<&CustomHeaders>,
    ) -> Result<Self, ValidationError> {
        if input.len() > MAX_HEADERS {
            return Err(ValidationError::new(
                field,
                format!("must list at most {MAX_HEADERS} headers"),
            ));
        }
        let mut headers: Vec<CustomHeader> = Vec::with_capacity(input.len());
        let mut total = 0;
        for (i, (name, value)) in input.iter().enumerate() {
            let name_field = format!("{field}[{i}].name");
            let value_field = format!("{field}[{i}].value");
            check_header_name(&name_field, name)?;
            if let Some(j) = headers
                .iter()
                .position(|h| h.name.eq_ignore_ascii_case(name))
            {
                return Err(ValidationError::new(
                    name_field,
                    format!("repeats the name of {field}[{j}] (names are unique, ignoring case)"),
                ));
            }
            let value = if value.is_empty() {
                current
                    .and_then(|c| c.get(name))
                    .map(|kept| kept.value.clone())
                    .ok_or_else(|| {
                        ValidationError::new(
                            &value_field,
                            "is required (an empty value keeps the current one only when \
                             updating a header the webhook already has)",
                        )
                    })?
            } else {
                check_header_value(&value_field, value)?;
                value.clone()
            };
            total += name.len() + value.len();
            headers.push(CustomHeader {
                name: name.clone(),
                value,
            });
        }
        if total > MAX_HEADERS_TOTAL {
            return Err(ValidationError::new(
                field,
                format!("names and values must total at most {MAX_HEADERS_TOTAL} bytes"),
            ));
        }
        Ok(Self(headers))
    }

    /// The header named `name`, ignoring case.
    pub fn get(&self, name: &str) -> Option<&CustomHeader> {
        self.0.iter().find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// The headers, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &CustomHeader> {
        self.0.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `name` (any case) is one of these headers: the attempt history redacts them.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The names and hints responses show.
    pub fn hints(&self) -> Vec<(String, String)> {
        self.0.iter().map(|h| (h.name.clone(), h.hint())).collect()
    }

    /// The form the store seals: JSON `[[name, value], ...]`.
    pub fn to_json(&self) -> Vec<u8> {
        let pairs: Vec<[&str; 2]> = self.0.iter().map(|h| [h.name(), h.value()]).collect();
        serde_json::to_vec(&pairs).unwrap_or_default()
    }

    /// Reads what [`CustomHeaders::to_json`] wrote (after the store opened it). The error says
    /// what is wrong, never what the values are.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let pairs: Vec<(String, String)> = serde_json::from_slice(bytes)
            .map_err(|_| "stored custom headers are not a list of name/value pairs".to_owned())?;
        Ok(Self(
            pairs
                .into_iter()
                .map(|(name, value)| CustomHeader { name, value })
                .collect(),
        ))
    }
}

fn check_header_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.is_empty() || name.len() > MAX_HEADER_NAME {
        return Err(ValidationError::new(
            field,
            format!("must be 1 to {MAX_HEADER_NAME} characters"),
        ));
    }
    if !name.bytes().all(is_token_byte) {
        return Err(ValidationError::new(
            field,
            "must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~ only",
        ));
    }
    if is_reserved_header(name) {
        return Err(ValidationError::new(
            field,
            format!(
                "`{name}` cannot be set: Host, Content-Length, Content-Type, User-Agent, Expect, \
                 the hop-by-hop headers (Connection, Keep-Alive, Proxy-*, TE, Trailer, \
                 Transfer-Encoding, Upgrade) and the Standard Webhooks headers (webhook-id, \
                 webhook-timestamp, webhook-signature) are the service's own"
            ),
        ));
    }
    Ok(())
}

/// Checks a value without ever quoting it: error messages reach responses and logs.
fn check_header_value(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.len() > MAX_HEADER_VALUE {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_HEADER_VALUE} bytes"),
        ));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(ValidationError::new(
            field,
            "must not contain CR, LF or NUL characters",
        ));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err(ValidationError::new(
            field,
            "must be printable ASCII (tabs allowed)",
        ));
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        // HTTP drops such whitespace, so the destination would get another value than stored.
        return Err(ValidationError::new(
            field,
            "must not start or end with whitespace",
        ));
    }
    Ok(())
}

/// What an edit does to one optional setting (a client certificate, a private CA).
#[derive(Debug, Clone)]
pub enum Change<T> {
    /// Left as it is (the update mask does not name it).
    Keep,
    /// Replaced.
    Set(T),
    /// Removed.
    Remove,
}

impl<T> Change<T> {
    /// `Set` for `Some`, `Remove` for `None`.
    pub fn from_option(value: Option<T>) -> Self {
        value.map_or(Self::Remove, Self::Set)
    }
}

/// What responses show of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Expiry.
    pub not_after: OffsetDateTime,
}

impl CertificateInfo {
    /// Reads the subject, issuer and expiry of one DER certificate.
    fn read(field: &str, der: &[u8], which: &str) -> Result<Self, ValidationError> {
        let (_, certificate) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            ValidationError::new(field, format!("{which} is not an X.509 certificate ({e})"))
        })?;
        let not_after = certificate.validity().not_after.to_datetime();
        if not_after < OffsetDateTime::now_utc() {
            return Err(ValidationError::new(
                field,
                format!(
                    "{which} has expired (at {})",
                    super::timestamps::rfc3339(not_after)
                ),
            ));
        }
        Ok(Self {
            subject: certificate.subject().to_string(),
            issuer: certificate.issuer().to_string(),
            not_after,
        })
    }
}

/// The certificates of a PEM text: at least one, nothing but certificates.
fn parse_certificates(
    field: &str,
    pem: &str,
    max_count: usize,
) -> Result<Vec<CertificateDer<'static>>, ValidationError> {
    if pem.len() > MAX_CERTIFICATE_PEM {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_CERTIFICATE_PEM} bytes"),
        ));
    }
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ValidationError::new(
                field,
                format!("must be PEM certificates (-----BEGIN CERTIFICATE-----): {e}"),
            )
        })?;
    if certificates.is_empty() {
        return Err(ValidationError::new(
            field,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    if certificates.len() > max_count {
        return Err(ValidationError::new(
            field,
            format!("must hold at most {max_count} certificates"),
        ));
    }
    Ok(certificates)
}

/// A client certificate chain and its private key, for mutual TLS to the destination. The key
/// is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    chain_pem: String,
    key_pem: String,
    info: CertificateInfo,
}

impl ClientCertificate {
    /// Checks a chain (`cert_field`) and key (`key_field`): both PEM, the key one rustls can
    /// sign with, and the key matching the leaf certificate. Key errors never quote the key.
    pub fn parse(
        cert_field: &str,
        key_field: &str,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<Self, ValidationError> {
        let chain = parse_certificates(cert_field, chain_pem, MAX_CA_CERTIFICATES)?;
        let info = CertificateInfo::read(cert_field, &chain[0], "the first certificate")?;
        if key_pem.len() > MAX_KEY_PEM {
            return Err(ValidationError::new(
                key_field,
                format!("must be at most {MAX_KEY_PEM} bytes"),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| {
            ValidationError::new(
                key_field,
                "must be a PEM private key (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or \
                 SEC1 \"EC PRIVATE KEY\")",
            )
        })?;
        let provider = rustls::crypto::ring::default_provider();
        rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => ValidationError::new(
                key_field,
                format!("does not belong to the first certificate of {cert_field}"),
            ),
            other => ValidationError::new(
                key_field,
                format!("is not a key the service can use ({other})"),
            ),
        })?;
        Ok(Self {
            chain_pem: chain_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            info,
        })
    }

    /// Rebuilds one the store read back (it was checked when saved).
    pub fn from_parts(chain_pem: String, key_pem: String, info: CertificateInfo) -> Self {
        Self {
            chain_pem,
            key_pem,
            info,
        }
    }

    /// The chain, PEM.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The private key, PEM: for the TLS client and the vault only.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// What responses show.
    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    /// The chain and key as rustls takes them.
    pub fn to_der(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let chain = CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the stored client certificate does not parse: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| "the stored client key does not parse".to_owned())?;
        Ok((chain, key))
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("info", &self.info)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A private CA: the only roots a webhook's destination certificate may chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateCa {
    pem: String,
    info: CertificateInfo,
}

impl PrivateCa {
    /// Checks a CA bundle: 1 to 10 PEM certificates, each usable as a trust anchor.
    pub fn parse(field: &str, pem: &str) -> Result<Self, ValidationError> {
        let certificates = parse_certificates(field, pem, MAX_CA_CERTIFICATES)?;
        let info = CertificateInfo::read(field, &certificates[0], "the first certificate")?;
        let mut roots = rustls::RootCertStore::empty();
        for (i, certificate) in certificates.into_iter().enumerate() {
            roots.add(certificate).map_err(|e| {
                ValidationError::new(
                    field,
                    format!("certificate {} is not usable as a CA ({e})", i + 1),
                )
            })?;
        }
        Ok(Self {
            pem: pem.to_owned(),
            info,
        })
    }

    /// Rebuilds one the store read back.
    pub fn from_parts(pem: String, info: CertificateInfo) -> Self {
        Self { pem, info }
    }

    /// The certificates, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// What responses show.
    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    /// The certificates as rustls roots.
    pub fn roots(&self) -> Result<rustls::RootCertStore, String> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(self.pem.as_bytes()) {
            let certificate =
                certificate.map_err(|e| format!("the stored private CA does not parse: {e}"))?;
            roots
                .add(certificate)
                .map_err(|e| format!("the stored private CA is not usable: {e}"))?;
        }
        Ok(roots)
    }
}

/// A webhook's TLS settings as a delivery needs them; `version` (when the webhook last changed)
/// tells a cached TLS client built from older settings apart.
#[derive(Debug, Clone)]
pub struct DestinationTls {
    /// When the webhook was last changed.
    pub version: OffsetDateTime,
    /// The client certificate to present, if any.
    pub client_certificate: Option<ClientCertificate>,
    /// The only CA to trust, if any (else the public web PKI roots).
    pub server_ca: Option<PrivateCa>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn field_of(input: &[(&str, &str)]) -> String {
        match CustomHeaders::parse("webhook.headers", &pairs(input), None) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.field,
        }
    }

    #[test]
    fn reserved_and_malformed_names_are_refused_by_index() {
        for name in [
            "Host",
            "content-length",
            "Content-Type",
            "Connection",
            "Keep-Alive",
            "Proxy-Authorization",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "Webhook-Signature",
            "webhook-id",
            "webhook-timestamp",
            "bad name",
            "",
            "naïve",
        ] {
            assert_eq!(
                field_of(&[("X-Api-Key", "k"), (name, "v")]),
                "webhook.headers[1].name",
                "{name:?}"
            );
        }
        assert_eq!(field_of(&[("Authorization", "Bearer t")]), "ok");
    }

    #[test]
    fn values_refuse_line_breaks_nul_and_non_ascii() {
        for value in ["a\r\nX-Evil: 1", "a\nb", "a\0b", "é", " padded", ""] {
            assert_eq!(
                field_of(&[("X-Api-Key", value)]),
                "webhook.headers[0].value",
                "{value:?}"
            );
        }
        assert_eq!(
            field_of(&[("A", "1"), ("a", "2")]),
            "webhook.headers[1].name"
        );
        let many: Vec<(String, String)> = (0..=MAX_HEADERS)
            .map(|i| (format!("X-{i}"), "v".to_owned()))
            .collect();
        assert!(CustomHeaders::parse("h", &many, None).is_err());
        let big = "v".repeat(MAX_HEADER_VALUE);
        let five: Vec<(String, String)> = (0..5).map(|i| (format!("X-{i}"), big.clone())).collect();
        assert_eq!(
            CustomHeaders::parse("h", &five, None).map_err(|e| e.field),
            Err("h".to_owned())
        );
    }

    #[test]
    fn an_empty_value_keeps_the_current_one_on_update() {
        let current =
            CustomHeaders::parse("h", &pairs(&[("Authorization", "Bearer old")]), None).unwrap();
        let kept = CustomHeaders::parse(
            "h",
            &pairs(&[("authorization", ""), ("X-New", "n")]),
            Some(&current),
        )
        .unwrap();
        assert_eq!(kept.get("Authorization").unwrap().value(), "Bearer old");
        assert!(CustomHeaders::parse("h", &pairs(&[("X-Other", "")]), Some(&current)).is_err());
    }

    #[test]
    fn hints_and_debug_never_show_a_value() {
        let headers = CustomHeaders::parse(
            "h",
            &pairs(&[
                ("Authorization", "Bearer sk_live_abcdefgh1234"),
                ("X", "short"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            headers.hints(),
            vec![
                (
                    "Authorization".to_owned(),
                    "••••1234 (27 characters)".to_owned()
                ),
                ("X".to_owned(), "•••• (5 characters)".to_owned()),
            ]
        );
        assert!(!format!("{headers:?}").contains("sk_live"));
        let back = CustomHeaders::from_json(&headers.to_json()).unwrap();
        assert_eq!(back, headers);
    }

    #[test]
    fn certificates_keys_and_cas_are_checked() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["client.example".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let ok = ClientCertificate::parse("c", "k", &cert.pem(), &key.serialize_pem()).unwrap();
        assert!(!ok.info().subject.is_empty());
        assert!(!format!("{ok:?}").contains("PRIVATE"));
        let mismatch = ClientCertificate::parse("c", "k", &cert.pem(), &other.serialize_pem());
        assert_eq!(mismatch.map_err(|e| e.field), Err("k".to_owned()));
        let garbage = ClientCertificate::parse("c", "k", "not pem", &key.serialize_pem());
        assert_eq!(garbage.map_err(|e| e.field), Err("c".to_owned()));
        let bad_key = ClientCertificate::parse(
            "c",
            "k",
            &cert.pem(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        assert_eq!(bad_key.map_err(|e| e.field), Err("k".to_owned()));
        assert!(PrivateCa::parse("ca", &cert.pem()).is_ok());
        assert!(
            PrivateCa::parse(
                "ca",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
    }
}
