//! Destinations that want more than a signature: custom request headers, a client certificate
//! for mutual TLS and a private CA. The receivers are real HTTPS servers on 127.0.0.1 with a
//! throwaway PKI (rcgen): the server certificate comes from a private CA, and the server demands
//! a client certificate signed by its client CA and checks the `Authorization` header.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

use testkit::{
    Receiver, TEST_FLAGS, fresh_database_url, spawn_app, spawn_app_on, withdrawal_event,
};

/// A CA: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("self-signed").pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `names` with `usage`, as (certificate DER, PEM, key).
    fn leaf(
        &self,
        common_name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (CertificateDer<'static>, String, KeyPair) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.der().clone(), cert.pem(), key)
    }
}

/// The partner's side: its server CA, its client CA and a client certificate it issued to us.
struct Partner {
    server_ca: Ca,
    client_ca: Ca,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Partner {
    fn new() -> Self {
        let server_ca = Ca::new("Partner Server CA");
        let client_ca = Ca::new("Partner Client CA");
        let (_, client_cert_pem, key) =
            client_ca.leaf("payments-client", &[], ExtendedKeyUsagePurpose::ClientAuth);
        Self {
            server_ca,
            client_ca,
            client_cert_pem,
            client_key_pem: key.serialize_pem(),
        }
    }
}

/// An HTTPS receiver that requires a client certificate from `client_ca` and answers 204 when
/// `Authorization` is `expected`, 401 otherwise.
#[derive(Clone)]
struct MtlsReceiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<HeaderMap>>>,
    failed_handshakes: Arc<AtomicUsize>,
}

impl MtlsReceiver {
    async fn start(partner: &Partner, expected: &str) -> Self {
        let (cert, _, key) = partner.server_ca.leaf(
            "partner.example",
            &["127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client_roots = rustls::RootCertStore::empty();
        let client_ca_der =
            CertificateDer::from_pem_slice(partner.client_ca.pem.as_bytes()).expect("client CA");
        client_roots.add(client_ca_der).expect("client CA");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(client_roots),
            provider.clone(),
        )
        .build()
        .expect("verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let receiver = Self {
            addr: listener.local_addr().expect("address"),
            requests: Arc::default(),
            failed_handshakes: Arc::default(),
        };
        let state = receiver.clone();
        let expected = expected.to_owned();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let state = state.clone();
                let expected = expected.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        state.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        let expected = expected.clone();
                        async move {
                            let authorized = request
                                .headers()
                                .get("authorization")
                                .is_some_and(|v| v.as_bytes() == expected.as_bytes());
                            state
                                .requests
                                .lock()
                                .expect("lock")
                                .push(request.headers().clone());
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = if authorized {
                                hyper::StatusCode::NO_CONTENT
                            } else {
                                hyper::StatusCode::UNAUTHORIZED
                            };
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        receiver
    }

    fn url(&self) -> String {
        format!("https://{}/hook", self.addr)
    }

    fn requests(&self) -> Vec<HeaderMap> {
        self.requests.lock().expect("lock").clone()
    }
}

/// A webhook to `url` with the partner's credentials.
fn partner_webhook(url: &str, partner: &Partner, token: &str) -> pb::Webhook {
    pb::Webhook {
        name: "Partner payouts".into(),
        destination_url: url.into(),
        function: pb::Function::Withdrawal as i32,
        events: Some(pb::EventSelection {
            approval_nodes: vec![1],
            rejection: true,
        }),
        headers: vec![
            header("Authorization", token),
            header("X-Api-Key", "partner-api-key-0123456789"),
        ],
        client_certificate_pem: partner.client_cert_pem.clone(),
        client_key_pem: partner.client_key_pem.clone(),
        server_ca_pem: partner.server_ca.pem.clone(),
        ..Default::default()
    }
}

fn header(name: &str, value: &str) -> pb::CustomHeader {
    pb::CustomHeader {
        name: name.into(),
        value: value.into(),
        value_hint: String::new(),
    }
}

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// The base64 body of a PEM (what would leak if the key leaked), without the armour lines.
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// Asserts that none of `secrets` occurs in `text`, naming where.
fn assert_hidden(text: &str, secrets: &[&str], place: &str) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{place} shows a credential ({}…)",
            &secret[..8.min(secret.len())]
        );
    }
}

/// The real binary, serving `database_url` with debug logging into a file, so the logs of a
/// whole flow can be searched for credentials.
struct ServiceProcess {
    _child: tokio::process::Child,
    log: PathBuf,
    admin: WebhookAdminClient<Channel>,
    ingest: EventIngestClient<Channel>,
}

impl ServiceProcess {
    async fn start(database_url: &str, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log =
            std::env::temp_dir().join(format!("webhooks-credentials-{}.log", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut args = vec![
            "serve".to_owned(),
            "--database-url".to_owned(),
            database_url.to_owned(),
            "--grpc-addr".to_owned(),
            format!("127.0.0.1:{port}"),
            "--log-level".to_owned(),
            "debug".to_owned(),
        ];
        for pair in TEST_FLAGS.chunks(2) {
            if pair[0] != "--log-level" {
                args.extend(pair.iter().map(|s| (*s).to_owned()));
            }
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_webhooks"))
            .args(&args)
            .env_remove("DATABASE_URL")
            .env_remove("WEBHOOKS_ENCRYPTION_KEY")
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut channel = None;
        for _ in 0..300 {
            if let Ok(connected) = Channel::from_shared(endpoint.clone())
                .expect("endpoint")
                .connect()
                .await
            {
                channel = Some(connected);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let channel = channel.unwrap_or_else(|| {
            panic!(
                "the service never listened; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Self {
            _child: child,
            log,
            admin: WebhookAdminClient::new(channel.clone()),
            ingest: EventIngestClient::new(channel),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[tokio::test]
async fn a_partner_demanding_a_client_certificate_and_its_own_authorization_gets_both() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let partner = Partner::new();
    let token = format!("Bearer partner-token-{}", uuid::Uuid::new_v4().simple());
    let receiver = MtlsReceiver::start(&partner, &token).await;
    let (database_url, _) = fresh_database_url();
    let service = ServiceProcess::start(&database_url, &["--encryption-key", &key(7)]).await;
    let admin = service.admin.clone();
    let key_body = pem_body(&partner.client_key_pem);
    let secrets = [
        token.as_str(),
        "partner-api-key-0123456789",
        key_body.as_str(),
    ];

    let created = admin
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            webhook: Some(partner_webhook(&receiver.url(), &partner, &token)),
            secret: String::new(),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    let webhook = created.webhook.clone().expect("a webhook");
    assert_hidden(&format!("{created:?}"), &secrets, "CreateWebhook");
    let names: Vec<&str> = webhook.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Authorization", "X-Api-Key"]);
    assert!(webhook.headers.iter().all(|h| h.value.is_empty()));
    let hint = &webhook.headers[0].value_hint;
    assert_eq!(
        hint,
        &format!(
            "••••{} ({} characters)",
            &token[token.len() - 4..],
            token.len()
        )
    );
    assert!(webhook.client_key_pem.is_empty() && webhook.client_certificate_pem.is_empty());
    let client = webhook
        .client_certificate
        .clone()
        .expect("certificate info");
    assert!(client.subject.contains("payments-client"), "{client:?}");
    assert!(client.issuer.contains("Partner Client CA"), "{client:?}");
    assert!(
        webhook
            .server_ca
            .as_ref()
            .is_some_and(|ca| ca.subject.contains("Partner Server CA"))
    );

    // The first attempt, then a test event and a resend: every one carries the credentials.
    let published = service
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "cred-1",
            "W-1",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .expect("published")
        .into_inner();
    let delivery_id = published
        .delivery_ids
        .first()
        .cloned()
        .expect("one delivery");
    let delivered =
        testkit::wait_for_delivery_status_of(&admin, &delivery_id, pb::DeliveryStatus::Succeeded)
            .await;
    let test = admin
        .clone()
        .send_test_event(pb::SendTestEventRequest {
            webhook_id: webhook.id.clone(),
            ..Default::default()
        })
        .await
        .expect("test sent")
        .into_inner();
    testkit::wait_for_delivery_status_of(&admin, &test.id, pb::DeliveryStatus::Succeeded).await;
    admin
        .clone()
        .resend_delivery(pb::ResendDeliveryRequest {
            id: delivery_id.clone(),
            ..Default::default()
        })
        .await
        .expect("resent");
    let mut resent = delivered.clone();
    for _ in 0..100 {
        resent = testkit::wait_for_delivery_status_of(
            &admin,
            &delivery_id,
            pb::DeliveryStatus::Succeeded,
        )
        .await;
        if resent.attempts.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(resent.attempts.len(), 2, "{resent:#?}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request["authorization"], token.as_str());
        assert_eq!(request["x-api-key"], "partner-api-key-0123456789");
        assert!(request.contains_key("webhook-signature"));
    }
    assert_eq!(receiver.failed_handshakes.load(Ordering::SeqCst), 0);

    // History shows the names, never the values.
    for attempt in &resent.attempts {
        let recorded: Vec<(&str, &str)> = attempt
            .request_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert!(
            recorded.contains(&("authorization", "[redacted]")),
            "{recorded:?}"
        );
        assert!(
            recorded.contains(&("x-api-key", "[redacted]")),
            "{recorded:?}"
        );
    }
    assert_hidden(&format!("{resent:?}"), &secrets, "GetDelivery");
    let listed = admin
        .clone()
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .expect("listed")
        .into_inner();
    assert_hidden(&format!("{listed:?}"), &secrets, "ListWebhooks");
    let got = admin
        .clone()
        .get_webhook(pb::GetWebhookRequest {
            id: webhook.id.clone(),
        })
        .await
        .expect("got")
        .into_inner();
    assert_eq!(got.headers, webhook.headers);
    assert_hidden(&format!("{got:?}"), &secrets, "GetWebhook");
    let deliveries = admin
        .clone()
        .list_deliveries(pb::ListDeliveriesRequest::default())
        .await
        .expect("listed")
        .into_inner();
    assert_hidden(&format!("{deliveries:?}"), &secrets, "ListDeliveries");

    // At rest: the attempt rows hold no value, and the webhook row holds them sealed.
    let (db, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .expect("db");
    tokio::spawn(connection);
    for table in ["delivery_attempts", "webhooks", "delivery_update_entries"] {
        let rows = db
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .await
            .expect("readable");
        assert!(
            !rows.is_empty() || table.starts_with("delivery_update"),
            "{table} is empty"
        );
        for row in rows {
            let text: String = row.get(0);
            assert_hidden(&text, &secrets, table);
            // bytea columns show as hex: look for the values' hex too.
            for secret in &secrets {
                let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
                assert!(!text.contains(&hex), "{table} holds a credential unsealed");
            }
        }
    }
    // And the service's own logs, at debug level, never showed one.
    let log = service.log();
    assert!(
        log.contains("delivery attempt") && log.contains("DEBUG"),
        "the log was captured at debug level"
    );
    assert_hidden(&log, &secrets, "the service log");
    let _ = std::fs::remove_file(&service.log);
}

#[tokio::test]
async fn without_the_client_certificate_or_with_another_ca_the_attempt_fails_as_tls() {
    let app = spawn_app().await;
    let partner = Partner::new();
    let token = "Bearer t-0123456789abcdef";
    let receiver = MtlsReceiver::start(&partner, token).await;

    // No client certificate: the partner refuses the handshake.
    let mut no_cert = partner_webhook(&receiver.url(), &partner, token);
    no_cert.client_certificate_pem.clear();
    no_cert.client_key_pem.clear();
    let no_cert = app.create_webhook_from(no_cert, "").await;
    // A CA that did not sign the partner's certificate: we refuse the partner's certificate
    // (and the public roots are not consulted either).
    let mut other_ca = partner_webhook(&receiver.url(), &partner, token);
    other_ca.server_ca_pem = Ca::new("Someone Else").pem;
    other_ca.events = Some(pb::EventSelection {
        approval_nodes: vec![1],
        rejection: false,
    });
    let other_ca = app.create_webhook_from(other_ca, "").await;

    let published = app
        .publish(withdrawal_event(
            "tls-1",
            "W-1",
            pb::Decision::Approved,
            Some(1),
        ))
        .await;
    assert_eq!(published.delivery_ids.len(), 2);
    for id in &published.delivery_ids {
        let delivery = app
            .wait_for_delivery_status(id, pb::DeliveryStatus::Failed)
            .await;
        assert!(!delivery.attempts.is_empty());
        for attempt in &delivery.attempts {
            assert_eq!(
                attempt.error_kind,
                pb::AttemptErrorKind::Tls as i32,
                "{attempt:#?}"
            );
        }
    }
    assert!(receiver.requests().is_empty(), "no request may get through");
    assert!(receiver.failed_handshakes.load(Ordering::SeqCst) > 0);
    assert_ne!(
        no_cert.webhook.map(|w| w.id),
        other_ca.webhook.map(|w| w.id)
    );
}

/// The field an INVALID_ARGUMENT names, in its message and its BadRequest detail.
fn invalid_field<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> String {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let field = status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .expect("a field violation");
    assert!(status.message().contains(&field), "{status:?}");
    field
}

#[tokio::test]
async fn forbidden_headers_and_malformed_pem_are_invalid_argument_naming_the_field() {
    let app = spawn_app().await;
    let partner = Partner::new();
    let receiver = Receiver::start().await;
    let base = || pb::Webhook {
        client_certificate_pem: String::new(),
        client_key_pem: String::new(),
        server_ca_pem: String::new(),
        ..partner_webhook(&receiver.url("/hook"), &partner, "Bearer ok")
    };
    let create = |webhook: pb::Webhook| {
        let mut admin = app.admin.clone();
        async move {
            admin
                .create_webhook(pb::CreateWebhookRequest {
                    webhook: Some(webhook),
                    secret: String::new(),
                    ..Default::default()
                })
                .await
        }
    };
    for name in [
        "Host",
        "Content-Length",
        "content-type",
        "Connection",
        "Keep-Alive",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "webhook-id",
        "Webhook-Timestamp",
        "webhook-signature",
        "not a token",
    ] {
        let mut webhook = base();
        webhook.headers.push(header(name, "v"));
        assert_eq!(
            invalid_field(create(webhook).await),
            "webhook.headers[2].name",
            "{name}"
        );
    }
    let mut webhook = base();
    webhook.headers[0].value = "Bearer x\r\nX-Injected: 1".into();
    assert_eq!(
        invalid_field(create(webhook).await),
        "webhook.headers[0].value"
    );

    let https = "https://127.0.0.1:9/hook";
    let mut webhook = base();
    webhook.destination_url = https.into();
    webhook.client_certificate_pem =
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".into();
    webhook.client_key_pem = partner.client_key_pem.clone();
    assert_eq!(
        invalid_field(create(webhook).await),
        "webhook.client_certificate_pem"
    );
    let mut webhook = base();
    webhook.destination_url = https.into();
    webhook.client_certificate_pem = partner.client_cert_pem.clone();
    webhook.client_key_pem = KeyPair::generate().expect("key").serialize_pem();
    assert_eq!(
        invalid_field(create(webhook).await),
        "webhook.client_key_pem"
    );
    let mut webhook = base();
    webhook.destination_url = https.into();
    webhook.server_ca_pem = "garbage".into();
    assert_eq!(
        invalid_field(create(webhook).await),
        "webhook.server_ca_pem"
    );
    // TLS settings on an http:// destination would never apply.
    let mut webhook = base();
    webhook.server_ca_pem = partner.server_ca.pem.clone();
    assert_eq!(
        invalid_field(create(webhook).await),
        "webhook.server_ca_pem"
    );

    // UpdateWebhook checks the same, and a certificate changes only with its key.
    let created = app.create_webhook_from(base(), "").await;
    let id = created.webhook.expect("webhook").id;
    let update = |webhook: pb::Webhook, paths: &[&str]| {
        let mut admin = app.admin.clone();
        let paths = paths.iter().map(|p| (*p).to_owned()).collect();
        async move {
            admin
                .update_webhook(pb::UpdateWebhookRequest {
                    webhook: Some(webhook),
                    update_mask: Some(prost_types::FieldMask { paths }),
                    ..Default::default()
                })
                .await
        }
    };
    let mut webhook = pb::Webhook {
        id: id.clone(),
        ..Default::default()
    };
    webhook.headers = vec![
        header("X-Fine", "1"),
        header("Transfer-Encoding", "chunked"),
    ];
    assert_eq!(
        invalid_field(update(webhook, &["headers"]).await),
        "webhook.headers[1].name"
    );
    let webhook = pb::Webhook {
        id: id.clone(),
        client_certificate_pem: partner.client_cert_pem.clone(),
        ..Default::default()
    };
    assert_eq!(
        invalid_field(update(webhook, &["client_certificate_pem"]).await),
        "update_mask"
    );
    let webhook = pb::Webhook {
        id: id.clone(),
        ..Default::default()
    };
    assert_eq!(
        invalid_field(update(webhook, &["client_certificate"]).await),
        "update_mask"
    );
}

#[tokio::test]
async fn header_values_and_client_keys_survive_edits_and_key_rotation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let old = key(1);
    let new = key(2);
    let (url, name) = fresh_database_url();
    let app = spawn_app_on(&url, &name, &["--encryption-key", &old]).await;
    let partner = Partner::new();
    let token = "Bearer rotated-token-0123456789";
    let receiver = MtlsReceiver::start(&partner, token).await;
    let created = app
        .create_webhook_from(partner_webhook(&receiver.url(), &partner, token), "")
        .await;
    let id = created.webhook.expect("webhook").id;

    // An edit that lists Authorization without a value keeps it, and adds a header.
    let updated = app
        .admin
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            webhook: Some(pb::Webhook {
                id: id.clone(),
                headers: vec![header("Authorization", ""), header("X-Partner-Id", "P-7")],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["headers".into()],
            }),
            ..Default::default()
        })
        .await
        .expect("updated")
        .into_inner();
    let names: Vec<&str> = updated.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Authorization", "X-Partner-Id"]);
    assert!(
        updated.client_certificate.is_some(),
        "the certificate is kept"
    );
    app.stop().await;

    crate::helpers::reencrypt(&url, &new, &old).await;

    // Only the new key now: the headers and the client key still open.
    let app = spawn_app_on(&url, &name, &["--encryption-key", &new]).await;
    let published = app
        .publish(withdrawal_event(
            "rot-1",
            "W-1",
            pb::Decision::Rejected,
            None,
        ))
        .await;
    let delivery_id = published.delivery_ids.first().cloned().expect("delivery");
    app.wait_for_delivery_status(&delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["authorization"], token);
    assert_eq!(requests[0]["x-partner-id"], "P-7");
    assert!(
        !requests[0].contains_key("x-api-key"),
        "replaced by the edit"
    );
}
