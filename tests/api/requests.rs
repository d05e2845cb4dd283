//! Requests the service cannot read: malformed protobuf, invalid UTF-8, oversized messages,
//! truncated frames. Each is the caller's fault and answered so (INVALID_ARGUMENT naming what
//! failed, RESOURCE_EXHAUSTED stating the limit), never INTERNAL, on every RPC of the API.

use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use prost::Message;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use testkit::spawn_app;

/// Sends and receives messages as raw bytes, so a test can send what no generated client would.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One RPC of the API: its path, its input message and whether the server streams.
struct Rpc {
    path: String,
    input: prost_types::DescriptorProto,
    server_streaming: bool,
}

/// Every RPC of WebhookAdmin and EventIngest, read from the descriptor set the service serves,
/// so a new RPC is covered without touching this file.
fn every_rpc() -> Vec<Rpc> {
    let set = prost_types::FileDescriptorSet::decode(webhooks::proto::FILE_DESCRIPTOR_SET)
        .expect("the service's descriptor set decodes");
    let messages: std::collections::HashMap<String, prost_types::DescriptorProto> = set
        .file
        .iter()
        .flat_map(|file| {
            file.message_type.iter().map(move |message| {
                (
                    format!(".{}.{}", file.package(), message.name()),
                    message.clone(),
                )
            })
        })
        .collect();
    let mut rpcs = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                rpcs.push(Rpc {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    input: messages[method.input_type()].clone(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    assert!(rpcs.len() >= 15, "found only {} RPCs", rpcs.len());
    rpcs
}

/// Calls `path` with `message` as the request's bytes; the status, or OK.
async fn call_raw(channel: Channel, rpc: &Rpc, message: Bytes) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    let path = rpc.path.parse().expect("a valid path");
    let request = tonic::Request::new(message);
    let outcome = if rpc.server_streaming {
        match grpc.server_streaming(request, path, RawCodec).await {
            Ok(response) => response.into_inner().message().await.map(|_| ()),
            Err(status) => Err(status),
        }
    } else {
        grpc.unary(request, path, RawCodec).await.map(|_| ())
    };
    outcome.err().unwrap_or_else(|| tonic::Status::ok(""))
}

/// A channel to `app` for raw calls.
async fn raw_channel(app: &testkit::TestApp) -> Channel {
    Channel::from_shared(format!("http://{}", app.addr))
        .expect("a valid endpoint")
        .connect()
        .await
        .expect("connects")
}

/// Asserts that `rpc` answered `code`.
fn assert_code(rpc: &Rpc, status: &tonic::Status, code: Code) {
    assert_eq!(
        status.code(),
        code,
        "{}: {:?} {}",
        rpc.path,
        status.code(),
        status.message()
    );
}

/// The ErrorInfo reason of `status`, and whether it carries a RetryInfo.
fn reason(status: &tonic::Status) -> (String, bool) {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    (
        details
            .error_info()
            .map(|i| i.reason.clone())
            .unwrap_or_default(),
        details.retry_info().is_some(),
    )
}

/// A field of `message` with invalid UTF-8 where a string belongs: the first `string` field at
/// the top level. Requests without one get None.
fn invalid_utf8_in_a_string(message: &prost_types::DescriptorProto) -> Option<(String, Bytes)> {
    use prost_types::field_descriptor_proto::Type;
    let field = message.field.iter().find(|f| f.r#type() == Type::String)?;
    let mut bytes = Vec::new();
    prost::encoding::encode_key(
        u32::try_from(field.number()).expect("field numbers are positive"),
        prost::encoding::WireType::LengthDelimited,
        &mut bytes,
    );
    bytes.extend_from_slice(&[3, 0xff, 0xfe, 0xfd]);
    Some((field.name().to_owned(), Bytes::from(bytes)))
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_on_every_rpc() {
    let app = spawn_app().await;
    let channel = raw_channel(&app).await;
    // An unterminated varint: no message of any type decodes from it.
    let garbage = Bytes::from_static(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    for rpc in every_rpc() {
        let status = call_raw(channel.clone(), &rpc, garbage.clone()).await;
        assert_code(&rpc, &status, Code::InvalidArgument);
        assert_eq!(
            reason(&status),
            ("MALFORMED_REQUEST".into(), false),
            "{}",
            rpc.path
        );
        assert!(
            status
                .message()
                .contains(&format!("not a valid {} message", rpc.input.name()))
                || status.message().contains("not a valid protobuf message"),
            "{}: the message names what failed: {}",
            rpc.path,
            status.message()
        );
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_string_field_is_invalid_argument_naming_the_field() {
    let app = spawn_app().await;
    let channel = raw_channel(&app).await;
    let mut checked = 0;
    for rpc in every_rpc() {
        let Some((field, bytes)) = invalid_utf8_in_a_string(&rpc.input) else {
            continue;
        };
        let status = call_raw(channel.clone(), &rpc, bytes).await;
        assert_code(&rpc, &status, Code::InvalidArgument);
        assert!(
            status.message().contains("UTF-8") && status.message().contains(&field),
            "{}: names the field `{field}` and the rule: {}",
            rpc.path,
            status.message()
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} RPCs have a string field");
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_resource_exhausted_stating_the_limit() {
    let app = spawn_app().await;
    let channel = raw_channel(&app).await;
    // Over the largest limit any RPC has (8 MiB; WatchDeliveries takes 64 KiB).
    let huge = Bytes::from(vec![0u8; 8 * 1024 * 1024 + 1]);
    for rpc in every_rpc() {
        let status = call_raw(channel.clone(), &rpc, huge.clone()).await;
        assert_code(&rpc, &status, Code::ResourceExhausted);
        // Not worth retrying: no RetryInfo, and a negative pushback stops gRPC's retry policy.
        assert_eq!(
            reason(&status),
            ("MESSAGE_TOO_LARGE".into(), false),
            "{}",
            rpc.path
        );
        assert_eq!(
            status
                .metadata()
                .get("grpc-retry-pushback-ms")
                .and_then(|v| v.to_str().ok()),
            Some("-1"),
            "{}",
            rpc.path
        );
        assert!(
            status.message().contains("too large")
                && status.message().contains("the limit is ")
                && status.message().contains(" bytes"),
            "{}: states the limit: {}",
            rpc.path,
            status.message()
        );
    }
}

#[tokio::test]
async fn health_answers_a_malformed_request_with_invalid_argument() {
    let app = spawn_app().await;
    let channel = raw_channel(&app).await;
    let garbage = Bytes::from_static(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let health = Rpc {
        path: "/grpc.health.v1.Health/Check".into(),
        input: Default::default(),
        server_streaming: false,
    };
    let status = call_raw(channel, &health, garbage).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
}

/// POSTs `body` as a gRPC request to `path` over HTTP/2 without any gRPC client, returning the
/// answer's grpc-status and grpc-message (from the headers of a trailers-only answer, or the
/// trailers).
async fn post_raw_grpc(addr: std::net::SocketAddr, path: &str, body: Vec<u8>) -> (String, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.expect("an HTTP/2 answer");
    let mut headers = response.headers().clone();
    let collected = response.into_body().collect().await.expect("the body");
    if let Some(trailers) = collected.trailers() {
        headers.extend(trailers.clone());
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    (text("grpc-status"), text("grpc-message"))
}

#[tokio::test]
async fn truncated_and_empty_requests_are_invalid_argument() {
    let app = spawn_app().await;
    let path = "/backoffice.webhooks.v1.WebhookAdmin/ListWebhooks";
    // A frame that announces 100 bytes and carries 3.
    let truncated = vec![0, 0, 0, 0, 100, 1, 2, 3];
    let (code, message) = post_raw_grpc(app.addr, path, truncated).await;
    assert_eq!(code, "3", "truncated: {message}");
    // No message at all.
    let (code, message) = post_raw_grpc(app.addr, path, Vec::new()).await;
    assert_eq!(code, "3", "empty: {message}");
    // A compression flag that does not exist.
    let (code, message) = post_raw_grpc(app.addr, path, vec![7, 0, 0, 0, 0]).await;
    assert_eq!(code, "3", "bad flag: {message}");
}

/// POSTs a gRPC-Web-text request over HTTP/1.1 with `Accept: */*`, as curl or a plain proxy
/// sends it: the answer's content type, body and the status it carries.
async fn post_grpc_web_text(
    addr: std::net::SocketAddr,
    path: &str,
    body: &str,
) -> (String, String, Option<String>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc-web-text")
        .header("accept", "*/*")
        .header("x-grpc-web", "1")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.expect("an HTTP/1.1 answer");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let header_status = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
        header_status,
    )
}

#[tokio::test]
async fn a_grpc_web_text_request_gets_a_text_reply_on_both_ports() {
    use base64::Engine;
    let app = testkit::spawn_app_with(&["--console-addr", "127.0.0.1:0"]).await;
    let console = app.console_addr.expect("the console listens");
    // An empty ListWebhooksRequest in one gRPC frame, base64 as gRPC-Web-text sends it.
    let request = base64::engine::general_purpose::STANDARD.encode([0u8, 0, 0, 0, 0]);
    for addr in [app.addr, console] {
        let (content_type, body, _) = post_grpc_web_text(
            addr,
            "/backoffice.webhooks.v1.WebhookAdmin/ListWebhooks",
            &request,
        )
        .await;
        assert!(
            content_type.starts_with("application/grpc-web-text"),
            "{addr}: {content_type}"
        );
        // The whole reply is base64 (of a message frame and a trailers frame).
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .or_else(|_| {
                // Each frame may be padded on its own: decode them one by one.
                body.split_inclusive('=')
                    .filter(|chunk| !chunk.is_empty())
                    .try_fold(Vec::new(), |mut all, chunk| {
                        let part = base64::engine::general_purpose::STANDARD.decode(chunk)?;
                        all.extend(part);
                        Ok::<_, base64::DecodeError>(all)
                    })
            })
            .unwrap_or_else(|e| panic!("{addr}: the reply is not base64 ({e}): {body:?}"));
        let text = String::from_utf8_lossy(&decoded);
        assert!(text.contains("grpc-status:0"), "{addr}: {text:?}");
    }
}

#[tokio::test]
async fn malformed_grpc_web_text_is_invalid_argument() {
    let app = spawn_app().await;
    let (_, _, status) = post_grpc_web_text(
        app.addr,
        "/backoffice.webhooks.v1.WebhookAdmin/ListWebhooks",
        "!!!! not base64 %%%",
    )
    .await;
    assert_eq!(status.as_deref(), Some("3"));
}
