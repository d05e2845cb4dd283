//! The console's built files (`console/dist`, made by `scripts/build-console.sh`), embedded in
//! the binary at build time, and the HTTP answers made of them.
//!
//! Vite names the files under `assets/` by their content's hash, so they may be cached for good;
//! `index.html` names the current ones, so browsers revalidate it every time. Paths that are not
//! files (`/webhooks/abc`) are the app's own routes: a browser asking for a page there gets
//! `index.html`, and the app shows the route. A binary built before the console was gets a page
//! saying how to build it, with a 503.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use rust_embed::RustEmbed;
use tonic::body::Body;

/// `console/dist` at build time. `allow_missing`: a checkout where the console was not built
/// still builds, and serves [`NOT_BUILT_PAGE`].
#[derive(RustEmbed)]
#[folder = "console/dist"]
#[allow_missing = true]
struct Dist;

/// The app's page, also the answer for its routes.
const INDEX: &str = "index.html";
/// Where the hashed, immutable files are.
const ASSETS_PREFIX: &str = "assets/";

/// The app loads only its own files and talks only to its own origin; nothing may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";
/// For files named by their content's hash.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For everything else: browsers keep a copy but ask first (cheap, thanks to the ETag).
pub const CACHE_REVALIDATE: &str = "no-cache";

/// Served, with a 503, by a binary built without the console's files.
const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Webhooks console not built</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5}code{background:#f2f2f2;padding:0 .25rem}</style>
</head>
<body>
<h1>The web console was not built</h1>
<p>This <code>webhooks</code> binary was built without the console's files. Build them with
<code>scripts/build-console.sh</code>, then build the service again (<code>cargo build</code>),
or start it with <code>scripts/run.sh</code>, which does both.</p>
<p>The gRPC API answers on this address all the same.</p>
</body>
</html>
"#;

/// Whether this binary holds the console's files (`console/dist` had been built when it was
/// compiled). Without them every page is the 503 "not built" page.
pub fn is_built() -> bool {
    Dist::get(INDEX).is_some()
}

/// The paths of the embedded files, relative to `console/dist` (`index.html`,
/// `assets/index-<hash>.js`, ...). Empty when the console was not built.
pub fn files() -> Vec<String> {
    Dist::iter().map(Cow::into_owned).collect()
}

/// The answer to a request for one of the console's files (any request that is not gRPC).
pub fn respond<B>(request: &Request<B>) -> Response<Body> {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "the console's files are read with GET or HEAD\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if !is_built() {
        let mut response = secured(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/html; charset=utf-8",
            Bytes::from_static(NOT_BUILT_PAGE.as_bytes()),
        );
        set(&mut response, header::CACHE_CONTROL, "no-store");
        return without_body_for_head(response, method);
    }
    let path = request.uri().path().trim_start_matches('/');
    let path = if path.is_empty() { INDEX } else { path };
    let (name, file) = match Dist::get(path) {
        Some(file) => (path, file),
        None => match Dist::get(INDEX).filter(|_| is_app_route(request, path)) {
            Some(index) => (INDEX, index),
            None => return text(StatusCode::NOT_FOUND, "no such file in the console\n"),
        },
    };
    let etag = etag(&file.metadata.sha256_hash());
    let cache = if name.starts_with(ASSETS_PREFIX) {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    };
    let mut response = if matches_etag(request, &etag) {
        secured(StatusCode::NOT_MODIFIED, "", Bytes::new())
    } else {
        let mime = file.metadata.mimetype();
        let content_type = if mime.starts_with("text/") {
            Cow::Owned(format!("{mime}; charset=utf-8"))
        } else {
            Cow::Borrowed(mime)
        };
        let data = match file.data {
            Cow::Borrowed(bytes) => Bytes::from_static(bytes),
            Cow::Owned(bytes) => Bytes::from(bytes),
        };
        secured(StatusCode::OK, &content_type, data)
    };
    set(&mut response, header::CACHE_CONTROL, cache);
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    without_body_for_head(response, method)
}

/// A path the app routes itself: a page (the browser accepts HTML) at a path that names no file
/// (its last segment has no extension) outside `assets/`. A missing script or image stays a 404,
/// rather than an HTML page the browser would try to run.
fn is_app_route<B>(request: &Request<B>, path: &str) -> bool {
    let last_segment = path.rsplit('/').next().unwrap_or_default();
    let accepts_html = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"));
    accepts_html && !path.starts_with(ASSETS_PREFIX) && !last_segment.contains('.')
}

/// A strong ETag from the file's SHA-256 (its first 128 bits are plenty to tell versions apart).
fn etag(sha256: &[u8; 32]) -> String {
    let hex: String = sha256[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether the browser's `If-None-Match` names `etag` (or `*`).
fn matches_etag<B>(request: &Request<B>, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// A short plain-text answer (errors), with the security headers.
fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = secured(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(message.as_bytes()),
    );
    set(&mut response, header::CACHE_CONTROL, "no-store");
    response
}

/// A response with `content_type` (none when empty) and the headers every console response
/// carries: the content security policy, no MIME sniffing, no referrer.
fn secured(status: StatusCode, content_type: &str, body: Bytes) -> Response<Body> {
    let length = body.len();
    let mut response = Response::new(Body::new(Full::new(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if !content_type.is_empty() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
    }
    if status != StatusCode::NOT_MODIFIED {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn set(response: &mut Response<Body>, name: HeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

/// HEAD gets GET's headers (Content-Length included) and no body.
fn without_body_for_head(response: Response<Body>, method: &Method) -> Response<Body> {
    if method == Method::HEAD {
        response.map(|_| Body::empty())
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, accept: &str) -> Request<()> {
        Request::builder()
            .uri(path)
            .header(header::ACCEPT, accept)
            .body(())
            .expect("a valid request")
    }

    #[test]
    fn app_routes_are_pages_without_extension_outside_assets() {
        let html = "text/html,application/xhtml+xml,*/*;q=0.8";
        assert!(is_app_route(&get("/webhooks/abc", html), "webhooks/abc"));
        assert!(is_app_route(&get("/deliveries/", html), "deliveries/"));
        assert!(!is_app_route(&get("/main.js", html), "main.js"));
        assert!(!is_app_route(&get("/assets/gone", html), "assets/gone"));
        assert!(!is_app_route(&get("/webhooks/abc", "*/*"), "webhooks/abc"));
    }

    #[test]
    fn etags_match_with_or_without_weak_prefix() {
        let tag = etag(&[0xab; 32]);
        assert_eq!(tag, format!("\"{}\"", "ab".repeat(16)));
        let request = |value: &str| {
            Request::builder()
                .header(header::IF_NONE_MATCH, value)
                .body(())
                .expect("a valid request")
        };
        assert!(matches_etag(&request(&format!("\"x\", W/{tag}")), &tag));
        assert!(matches_etag(&request("*"), &tag));
        assert!(!matches_etag(&request("\"other\""), &tag));
    }

    #[test]
    fn other_methods_are_refused_with_the_security_headers() {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .body(())
            .expect("a valid request");
        let response = respond(&request);
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
    }
}
