//! The web console's listener (`--console-addr`): its files with their headers, the SPA
//! fallback, gRPC-Web (hand-framed, over HTTP/1.1) and plain gRPC through the same
//! authentication, graceful shutdown and the address rules; and the latest delivery's outcome
//! that the console's webhook list shows.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Buf, Bytes};
use http::{HeaderMap, Method, Request, StatusCode, Version, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tonic::transport::Channel;
use webhooks::console::assets;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

use testkit::{
    PATIENCE, Receiver, Reply, TestApp, fresh_database_url, serve_config, spawn_app,
    spawn_app_with, webhook_spec, with_token, withdrawal_event,
};

const ADMIN: &str = "console-admin-token-0123456789";
const INGEST: &str = "console-ingest-token-0123456789";
const CONSOLE: &[&str] = &["--console-addr", "127.0.0.1:0"];
const LIST_WEBHOOKS: &str = "/backoffice.webhooks.v1.WebhookAdmin/ListWebhooks";
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'";

/// An answer over HTTP/1.1.
struct Answer {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The headers every file (and error) of the console carries.
    #[track_caller]
    fn assert_secured(&self) {
        assert_eq!(self.header("content-security-policy"), CSP);
        assert_eq!(self.header("x-content-type-options"), "nosniff");
        assert_eq!(self.header("referrer-policy"), "no-referrer");
    }
}

/// One HTTP/1.1 request (hyper's client speaks HTTP/1.1 unless told otherwise).
async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (mut parts, body) = request.into_parts();
    parts.uri = format!("http://{addr}{}", parts.uri)
        .parse()
        .expect("a valid URI");
    let response = tokio::time::timeout(PATIENCE, client.request(Request::from_parts(parts, body)))
        .await
        .expect("the console answers in time")
        .expect("the console answers");
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a whole body")
        .to_bytes();
    Answer {
        status,
        version,
        headers,
        body,
    }
}

async fn get(addr: SocketAddr, path: &str, accept: &str) -> Answer {
    let request = Request::get(path)
        .header(header::ACCEPT, accept)
        .body(Full::default())
        .expect("a valid request");
    send(addr, request).await
}

/// What a gRPC-Web call answered: the HTTP answer, its messages and its gRPC status.
struct GrpcWebAnswer {
    http: Answer,
    messages: Vec<Bytes>,
    /// `grpc-status` from the trailer frame, or from the headers for a trailers-only answer.
    grpc_status: Option<i32>,
    grpc_message: String,
}

/// A unary gRPC-Web call over HTTP/1.1, framed by hand as a browser's client does: one data
/// frame (flag 0, big-endian length, message), `content-type: application/grpc-web+proto`.
async fn grpc_web(
    addr: SocketAddr,
    path: &str,
    message: &impl Message,
    token: Option<&str>,
) -> GrpcWebAnswer {
    let encoded = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + encoded.len());
    frame.push(0u8);
    frame.extend_from_slice(&u32::try_from(encoded.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&encoded);
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header(header::ACCEPT, "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let http = send(
        addr,
        request
            .body(Full::new(Bytes::from(frame)))
            .expect("a valid request"),
    )
    .await;
    let (messages, trailers) = frames(&http.body);
    let from = |name: &str| {
        trailers
            .get(name)
            .cloned()
            .or_else(|| Some(http.header(name).to_owned()).filter(|v| !v.is_empty()))
    };
    let grpc_status = from("grpc-status").map(|s| s.parse().expect("a numeric grpc-status"));
    let grpc_message = from("grpc-message").unwrap_or_default();
    GrpcWebAnswer {
        http,
        messages,
        grpc_status,
        grpc_message,
    }
}

/// Splits a gRPC-Web body into its messages and its trailers (the frame flagged 0x80).
fn frames(body: &Bytes) -> (Vec<Bytes>, HashMap<String, String>) {
    let mut body = body.clone();
    let mut messages = Vec::new();
    let mut trailers = HashMap::new();
    while body.has_remaining() {
        assert!(body.len() >= 5, "a truncated frame header: {body:?}");
        let flag = body.get_u8();
        let length = body.get_u32() as usize;
        assert!(body.len() >= length, "a truncated frame: {body:?}");
        let payload = body.split_to(length);
        if flag & 0x80 == 0 {
            messages.push(payload);
        } else {
            for line in String::from_utf8_lossy(&payload).split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    trailers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
        }
    }
    (messages, trailers)
}

fn console_of(app: &TestApp) -> SocketAddr {
    app.console_addr
        .expect("the console listens when --console-addr is set")
}

#[tokio::test]
async fn the_console_serves_its_files_with_caching_and_security_headers() {
    let app = spawn_app_with(CONSOLE).await;
    let console = console_of(&app);
    assert_ne!(console.port(), 0, "the real port is reported");
    assert_ne!(console, app.addr);

    let index = get(console, "/", BROWSER_ACCEPT).await;
    index.assert_secured();
    if !assets::is_built() {
        // Built without `scripts/build-console.sh`: a page that says so, as 503, everywhere.
        assert!(
            assets::files().is_empty(),
            "no index.html but files: {:?}",
            assets::files()
        );
        assert_eq!(index.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(index.header("content-type").starts_with("text/html"));
        let page = String::from_utf8_lossy(&index.body);
        assert!(
            page.contains("scripts/build-console.sh"),
            "the page names the build command: {page}"
        );
        let route = get(console, "/webhooks/abc", BROWSER_ACCEPT).await;
        assert_eq!(route.status, StatusCode::SERVICE_UNAVAILABLE);
        route.assert_secured();
        app.stop().await;
        return;
    }

    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.version, Version::HTTP_11);
    assert_eq!(index.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(index.header("cache-control"), "no-cache");
    assert!(
        String::from_utf8_lossy(&index.body).contains("<html"),
        "index.html is HTML"
    );
    let etag = index.header("etag").to_owned();
    assert!(etag.starts_with('"'), "a strong ETag: {etag:?}");
    let by_name = get(console, "/index.html", BROWSER_ACCEPT).await;
    assert_eq!(by_name.body, index.body);
    assert_eq!(by_name.header("cache-control"), "no-cache");

    // Revalidation: the same ETag is a 304 without a body.
    let revalidated = send(
        console,
        Request::get("/")
            .header(header::IF_NONE_MATCH, &etag)
            .body(Full::default())
            .expect("a valid request"),
    )
    .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.body.is_empty());

    // A hashed asset: cached for good.
    let asset = assets::files()
        .into_iter()
        .find(|path| path.starts_with("assets/"))
        .expect("a built console has files under assets/");
    let served = get(console, &format!("/{asset}"), "*/*").await;
    assert_eq!(served.status, StatusCode::OK, "/{asset}");
    assert_eq!(
        served.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(!served.header("content-type").is_empty());
    assert!(!served.body.is_empty());
    served.assert_secured();
    if asset.ends_with(".js") {
        assert!(served.header("content-type").contains("javascript"));
    }

    // The app's own routes get index.html; missing files stay 404.
    let route = get(console, "/webhooks/abc", BROWSER_ACCEPT).await;
    assert_eq!(route.status, StatusCode::OK);
    assert_eq!(route.body, index.body);
    assert_eq!(route.header("cache-control"), "no-cache");
    route.assert_secured();
    let missing = get(console, "/assets/missing-0000.js", "*/*").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.assert_secured();
    let not_a_page = get(console, "/webhooks/abc", "application/json").await;
    assert_eq!(not_a_page.status, StatusCode::NOT_FOUND);
    let post = send(
        console,
        Request::post("/")
            .body(Full::default())
            .expect("a valid request"),
    )
    .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[tokio::test]
async fn grpc_web_on_the_console_goes_through_the_same_authentication() {
    let app = spawn_app_with(&[
        "--console-addr",
        "127.0.0.1:0",
        "--admin-token",
        ADMIN,
        "--ingest-token",
        INGEST,
    ])
    .await;
    let console = console_of(&app);
    let create = with_token(
        pb::CreateWebhookRequest {
            webhook: Some(webhook_spec(
                "http://127.0.0.1:9/hooks",
                pb::Function::Withdrawal,
                &[1],
                true,
            )),
            secret: String::new(),
            ..Default::default()
        },
        Some(ADMIN),
    );
    let created = app
        .admin
        .clone()
        .create_webhook(create)
        .await
        .expect("created with the admin token")
        .into_inner()
        .webhook
        .expect("a webhook");

    let request = pb::ListWebhooksRequest::default();
    let listed = grpc_web(console, LIST_WEBHOOKS, &request, Some(ADMIN)).await;
    assert_eq!(listed.http.status, StatusCode::OK);
    assert_eq!(listed.http.version, Version::HTTP_11);
    assert!(
        listed
            .http
            .header("content-type")
            .starts_with("application/grpc-web"),
        "content-type {:?}",
        listed.http.header("content-type")
    );
    assert_eq!(
        listed.grpc_status,
        Some(0),
        "message: {}",
        listed.grpc_message
    );
    assert_eq!(listed.messages.len(), 1);
    let response = pb::ListWebhooksResponse::decode(listed.messages[0].clone())
        .expect("a ListWebhooksResponse");
    assert_eq!(response.webhooks.len(), 1);
    assert_eq!(response.webhooks[0].id, created.id);
    assert_eq!(response.webhooks[0].name, created.name);

    let anonymous = grpc_web(console, LIST_WEBHOOKS, &request, None).await;
    assert_eq!(anonymous.http.status, StatusCode::OK);
    assert_eq!(anonymous.grpc_status, Some(16), "UNAUTHENTICATED");
    assert!(anonymous.messages.is_empty());
    let wrong = grpc_web(console, LIST_WEBHOOKS, &request, Some("not-a-token")).await;
    assert_eq!(wrong.grpc_status, Some(16), "UNAUTHENTICATED");
    let ingest = grpc_web(console, LIST_WEBHOOKS, &request, Some(INGEST)).await;
    assert_eq!(ingest.grpc_status, Some(7), "PERMISSION_DENIED");
    assert!(
        ingest.grpc_message.contains("ingest"),
        "{}",
        ingest.grpc_message
    );

    // The gRPC port takes gRPC-Web too.
    let on_grpc_port = grpc_web(app.addr, LIST_WEBHOOKS, &request, Some(ADMIN)).await;
    assert_eq!(on_grpc_port.grpc_status, Some(0));
    assert_eq!(on_grpc_port.messages.len(), 1);

    // And the console's address takes plain gRPC (HTTP/2) with the same rules.
    let channel = Channel::from_shared(format!("http://{console}"))
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connects to the console over HTTP/2");
    let mut client = WebhookAdminClient::new(channel);
    let refused = client
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let authorized = with_token(pb::ListWebhooksRequest::default(), Some(ADMIN));
    let listed = client
        .list_webhooks(authorized)
        .await
        .expect("listed over plain gRPC")
        .into_inner();
    assert_eq!(listed.webhooks.len(), 1);
    drop(client);

    // The console stops with the service.
    app.stop().await;
    assert!(
        tokio::net::TcpStream::connect(console).await.is_err(),
        "the console still accepts connections after shutdown"
    );
}

#[tokio::test]
async fn the_console_is_off_unless_configured() {
    let app = spawn_app().await;
    assert_eq!(app.console_addr, None);
    app.stop().await;
}

#[tokio::test]
async fn the_console_refuses_a_non_loopback_address_without_tokens() {
    let (database_url, _) = fresh_database_url();
    let config = serve_config(&database_url, &["--console-addr", "0.0.0.0:0"]);
    let error = match webhooks::startup::Application::build(config).await {
        Ok(_) => panic!("an open API on 0.0.0.0 must be refused"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{error}"
    );
}

#[tokio::test]
async fn webhooks_show_their_latest_delivery_outcome() {
    let receiver = Receiver::start().await;
    let app = spawn_app().await;
    let hook = |path: &str, node: u32| {
        let url = receiver.url(path);
        let app = &app;
        async move {
            app.create_webhook(&url, pb::Function::Withdrawal, &[node], false)
                .await
                .webhook
                .expect("a webhook")
        }
    };
    // Approvals at node 1 go to `busy` only.
    let quiet = hook("/quiet", 2).await;
    assert_eq!(
        quiet.last_delivery_status,
        pb::DeliveryStatus::Unspecified as i32
    );
    let busy = hook("/busy", 1).await;
    let deliver = |request_id: &'static str, status: pb::DeliveryStatus| {
        let app = &app;
        async move {
            let event = withdrawal_event(request_id, request_id, pb::Decision::Approved, Some(1));
            let published = app.publish(event).await;
            app.wait_for_delivery_status(&published.delivery_ids[0], status)
                .await
        }
    };
    let delivered = deliver("WD-1", pb::DeliveryStatus::Succeeded).await;

    let shown = app.get_webhook(&busy.id).await;
    assert_eq!(
        shown.last_delivery_status,
        pb::DeliveryStatus::Succeeded as i32
    );
    assert_eq!(shown.last_delivery_at, delivered.updated_at);
    let listed = app
        .admin
        .clone()
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .expect("listed")
        .into_inner()
        .webhooks;
    let by_id = |id: &str| {
        listed
            .iter()
            .find(|w| w.id == id)
            .cloned()
            .expect("listed webhook")
    };
    assert_eq!(
        by_id(&busy.id).last_delivery_status,
        pb::DeliveryStatus::Succeeded as i32
    );
    assert_eq!(by_id(&busy.id).last_delivery_at, delivered.updated_at);
    assert_eq!(
        by_id(&quiet.id).last_delivery_status,
        pb::DeliveryStatus::Unspecified as i32
    );
    assert_eq!(by_id(&quiet.id).last_delivery_at, None);

    // The latest delivery counts, not the best one: a failing one after the success shows.
    receiver.reply_by_default(Reply::status(500));
    deliver("WD-2", pb::DeliveryStatus::Failed).await;
    let disabled = app.set_enabled(&busy.id, false).await;
    assert_eq!(
        disabled.last_delivery_status,
        pb::DeliveryStatus::Failed as i32,
        "every answer carrying a webhook shows it"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_console_speaks_the_grpc_ports_tls() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a self-signed certificate");
    let dir = std::env::temp_dir().join(format!("webhooks-console-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).expect("cert written");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("key written");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let (database_url, _) = fresh_database_url();
    let config = serve_config(
        &database_url,
        &[
            "--console-addr",
            "127.0.0.1:0",
            "--tls-cert",
            cert_path.to_str().expect("a UTF-8 path"),
            "--tls-key",
            key_path.to_str().expect("a UTF-8 path"),
        ],
    );
    let app = webhooks::startup::Application::build(config)
        .await
        .expect("the service starts");
    let console = app.console_addr().expect("the console listens");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    // gRPC over TLS, trusting only the service's certificate.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            certified.cert.pem(),
        ))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{console}"))
        .expect("valid endpoint")
        .tls_config(tls)
        .expect("a TLS client")
        .connect()
        .await
        .expect("a TLS connection to the console");
    WebhookAdminClient::new(channel)
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .expect("listed over TLS");

    // The files over HTTPS (HTTP/2, as browsers negotiate it).
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(certified.cert.der().clone())
        .expect("the certificate is a valid root");
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http2()
        .build();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, Full<Bytes>>(https);
    let response = client
        .get(
            format!("https://localhost:{}/", console.port())
                .parse()
                .expect("a valid URI"),
        )
        .await
        .expect("the console answers over HTTPS");
    let expected = if assets::is_built() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    assert_eq!(response.status(), expected);
    assert_eq!(response.headers()["content-security-policy"], CSP);

    let _ = stop.send(());
    server
        .await
        .expect("the service task ends")
        .expect("the service stops cleanly");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_malformed_watch_request_is_refused_as_invalid_by_the_encoded_update_route() {
    // WatchDeliveries is served by its own route (src/api/watch.rs), which answers a request it
    // cannot decode with INVALID_ARGUMENT naming the message (the generated server would say
    // INTERNAL), and still sits behind the same authentication.
    let app = spawn_app_with(&["--console-addr", "127.0.0.1:0", "--admin-token", ADMIN]).await;
    let console = console_of(&app);
    const WATCH: &str = "/backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries";
    // Field 1 as a varint, where WatchDeliveriesRequest has a string.
    let wrong = prost_types::Duration {
        seconds: 5,
        nanos: 0,
    };
    let refused = grpc_web(console, WATCH, &wrong, Some(ADMIN)).await;
    assert_eq!(
        refused.grpc_status,
        Some(tonic::Code::InvalidArgument as i32)
    );
    assert!(
        refused.grpc_message.contains("WatchDeliveriesRequest"),
        "{}",
        refused.grpc_message
    );
    let anonymous = grpc_web(console, WATCH, &pb::WatchDeliveriesRequest::default(), None).await;
    assert_eq!(
        anonymous.grpc_status,
        Some(tonic::Code::Unauthenticated as i32)
    );
}
