//! The web UI (`/ui/` by default, `ui_config.content_path`): static files embedded in the
//! binary and served with a strict Content-Security-Policy. Every asset lives under
//! `<content_path>assets/<version>/`, where the version is a hash of all the assets, so a
//! browser may cache them forever and a new build is fetched at once; modules import each
//! other by relative name and so stay inside the same version. Each asset is gzipped once, on
//! first use, and sent compressed to clients that accept it. Any other path under the content
//! path is the app's own page (deep links), answered with `index.html`.
//!
//! The app reads the HTTP API (`/v1/...`) only; nothing is loaded from another origin.

use flate2::write::GzEncoder;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};
use warp::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

/// Consul's answer on `/` when the UI is off.
const UI_DISABLED: &str = "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.";

/// Scripts, styles, images and API calls from this origin only; no inline code, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The page template: `{base}` is the content path, `{version}` the assets' version.
const INDEX_TEMPLATE: &str = include_str!("assets/index.html");

/// Every embedded asset: its name under `assets/<version>/` and its content type.
static FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/dom.js"),
    ),
    (
        "services.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/services.js"),
    ),
    (
        "nodes.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/nodes.js"),
    ),
    (
        "kv.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/kv.js"),
    ),
    (
        "acl.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/acl.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("assets/favicon.svg"),
    ),
];

/// One file ready to send, plain and gzipped (`Bytes`: a response shares them, uncopied).
struct Asset {
    content_type: &'static str,
    plain: bytes::Bytes,
    gzipped: bytes::Bytes,
}

impl Asset {
    fn new(content_type: &'static str, plain: Vec<u8>) -> Asset {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        encoder.write_all(&plain).expect("gzip into memory");
        let gzipped = encoder.finish().expect("gzip into memory");
        Asset {
            content_type,
            plain: plain.into(),
            gzipped: gzipped.into(),
        }
    }
}

/// The assets' version: the first 12 hex digits of a SHA-256 over every file.
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(INDEX_TEMPLATE.as_bytes());
        for (name, _, bytes) in FILES {
            ctx.update(name.as_bytes());
            ctx.update(bytes);
        }
        ctx.finish().as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    });
    &VERSION
}

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, content_type, bytes)| (*name, Asset::new(content_type, bytes.to_vec())))
        .collect()
});

/// The page for a content path (one per path an agent in this process serves).
fn index_page(content_path: &str) -> Arc<Asset> {
    static PAGES: LazyLock<Mutex<HashMap<String, Arc<Asset>>>> = LazyLock::new(Default::default);
    let mut pages = PAGES.lock().unwrap();
    pages
        .entry(content_path.to_string())
        .or_insert_with(|| {
            let html = INDEX_TEMPLATE
                .replace("{base}", content_path)
                .replace("{version}", version());
            Arc::new(Asset::new("text/html; charset=utf-8", html.into_bytes()))
        })
        .clone()
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not refused with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// What the UI answers for `path`, or `None` when the request is the API's.
pub fn serve(
    enabled: bool,
    content_path: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<bytes::Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if path == "/" {
        return Some(if enabled {
            redirect(content_path)
        } else {
            text(StatusCode::OK, UI_DISABLED)
        });
    }
    if !enabled || path.starts_with("/v1/") {
        return None;
    }
    if path == content_path.trim_end_matches('/') {
        return Some(redirect(content_path));
    }
    let rest = path.strip_prefix(content_path)?;
    let response = match rest.strip_prefix("assets/") {
        Some(asset) => {
            let found = asset
                .strip_prefix(version())
                .and_then(|name| name.strip_prefix('/'))
                .and_then(|name| ASSETS.get(name));
            match found {
                Some(asset) => send(asset, headers, "public, max-age=31536000, immutable"),
                None => text(StatusCode::NOT_FOUND, "404 page not found\n"),
            }
        }
        None => send(&index_page(content_path), headers, "no-cache"),
    };
    Some(response)
}

fn send(asset: &Asset, headers: &HeaderMap, cache: &'static str) -> Response<bytes::Bytes> {
    let gzip = accepts_gzip(headers);
    let body = if gzip { &asset.gzipped } else { &asset.plain };
    let mut response = Response::new(body.clone());
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    secure(response)
}

/// Consul's 301 to the content path.
fn redirect(content_path: &str) -> Response<bytes::Bytes> {
    let mut response = text(StatusCode::MOVED_PERMANENTLY, "");
    if let Ok(location) = HeaderValue::from_str(content_path) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<bytes::Bytes> {
    let mut response = Response::new(bytes::Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secure(response)
}

fn secure(mut response: Response<bytes::Bytes>) -> Response<bytes::Bytes> {
    let h = response.headers_mut();
    h.insert(
        "Content-Security-Policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("Referrer-Policy", HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(enabled: bool, path: &str, encoding: Option<&str>) -> Option<Response<bytes::Bytes>> {
        let mut headers = HeaderMap::new();
        if let Some(e) = encoding {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(e).unwrap());
        }
        serve(enabled, "/ui/", &Method::GET, path, &headers)
    }

    #[test]
    fn root_redirects_to_the_ui_or_says_it_is_off() {
        let on = get(true, "/", None).unwrap();
        assert_eq!(on.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(on.headers()[header::LOCATION], "/ui/");
        let off = get(false, "/", None).unwrap();
        assert_eq!(off.status(), StatusCode::OK);
        assert_eq!(off.body().as_ref(), UI_DISABLED.as_bytes());
        assert!(get(false, "/ui/", None).is_none());
        assert!(get(true, "/v1/kv/x", None).is_none());
    }

    #[test]
    fn deep_links_get_the_page_and_assets_are_versioned_and_gzipped() {
        let page = get(true, "/ui/dc1/services/web", None).unwrap();
        let html = String::from_utf8(page.body().to_vec()).unwrap();
        assert!(html.contains(&format!("/ui/assets/{}/app.js", version())));
        assert!(page.headers()["Content-Security-Policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
        let path = format!("/ui/assets/{}/app.js", version());
        let gz = get(true, &path, Some("br, gzip;q=0.8")).unwrap();
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let mut plain = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(gz.body().as_ref()),
            &mut plain,
        )
        .unwrap();
        assert_eq!(plain.as_bytes(), include_bytes!("assets/app.js"));
        let refused = get(true, &path, Some("gzip;q=0")).unwrap();
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
        let stale = get(true, "/ui/assets/0000/app.js", None).unwrap();
        assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    }
}
