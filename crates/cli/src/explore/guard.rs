//! Who may talk to the server. On a loopback bind only requests addressed to a loopback name
//! get in (a web page the user visits cannot reach the server through a rebinding DNS name); a
//! request from another page's origin is refused on any bind; with a token, every request
//! carries it as `?token=` or in the cookie the page gets, compared in constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::routes::ApiError;

/// The cookie that carries the token for the page's own requests.
pub(crate) const COOKIE: &str = "featx_token";

/// The rules of one server.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// The token every request needs, if any.
    pub token: Option<String>,
    /// Whether the server listens on a loopback address only.
    pub loopback: bool,
}

/// A fresh random token: 32 hex digits from the operating system's generator.
pub(crate) fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `host` (a Host header, port included or not) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The value of `name` in the query string, percent-decoded.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl Guard {
    /// Why `request` may not get in, if it may not.
    fn refuse(&self, headers: &HeaderMap, query: Option<&str>) -> Option<ApiError> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if self.loopback && !host.is_some_and(is_loopback_host) {
            return Some(ApiError::new(
                StatusCode::BAD_REQUEST,
                "this server answers requests for localhost only (the Host header names another)",
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let own = host.map(|h| format!("http://{h}"));
            if origin.to_str().ok() != own.as_deref() {
                return Some(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "requests from another site's pages are refused",
                ));
            }
        }
        let token = self.token.as_ref()?;
        let given = query_value(query, "token").or_else(|| cookie_value(headers, COOKIE));
        let matches = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.as_bytes())));
        (!matches).then(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a token is needed: open the URL featx explore printed (it ends in ?token=...)",
            )
        })
    }
}

/// The middleware: refuses what [`Guard`] refuses; a page opened with the right `?token=`
/// gets the cookie so its own requests carry it.
pub(crate) async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let query = request.uri().query().map(str::to_string);
    if let Some(refused) = guard.refuse(request.headers(), query.as_deref()) {
        return refused.into_response();
    }
    let from_query = query_value(query.as_deref(), "token");
    let mut response = next.run(request).await;
    if let (Some(token), Some(_)) = (&guard.token, from_query) {
        let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn loopback_names_only_on_a_loopback_bind() {
        for host in [
            "localhost:8787",
            "127.0.0.1:1",
            "[::1]:80",
            "app.localhost",
            "127.9.9.9",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:8787",
            "10.0.0.1",
            "localhost.evil.example",
            "[::2]:80",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
        let guard = Guard {
            token: None,
            loopback: true,
        };
        assert!(
            guard
                .refuse(&headers(&[(header::HOST, "127.0.0.1:5")]), None)
                .is_none()
        );
        let rebound = guard.refuse(&headers(&[(header::HOST, "evil.example:5")]), None);
        assert_eq!(rebound.map(|e| e.status), Some(StatusCode::BAD_REQUEST));
        assert!(guard.refuse(&HeaderMap::new(), None).is_some());
    }

    #[test]
    fn a_foreign_origin_is_refused_and_the_own_one_accepted() {
        let guard = Guard {
            token: None,
            loopback: false,
        };
        let own = headers(&[
            (header::HOST, "10.0.0.5:8787"),
            (header::ORIGIN, "http://10.0.0.5:8787"),
        ]);
        assert!(guard.refuse(&own, None).is_none());
        let foreign = headers(&[
            (header::HOST, "10.0.0.5:8787"),
            (header::ORIGIN, "http://evil.example"),
        ]);
        assert!(guard.refuse(&foreign, None).is_some());
    }

    #[test]
    fn the_token_comes_in_the_query_or_the_cookie() {
        let guard = Guard {
            token: Some("abc123".into()),
            loopback: false,
        };
        let host = headers(&[(header::HOST, "10.0.0.5:1")]);
        assert!(guard.refuse(&host, Some("token=abc123&x=1")).is_none());
        let status = |h: &HeaderMap, q| guard.refuse(h, q).map(|e| e.status);
        assert_eq!(
            status(&host, Some("token=abc124")),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(status(&host, None), Some(StatusCode::UNAUTHORIZED));
        let cookie = headers(&[
            (header::HOST, "10.0.0.5:1"),
            (header::COOKIE, "a=b; featx_token=abc123"),
        ]);
        assert!(guard.refuse(&cookie, None).is_none());
        assert_eq!(random_token().unwrap().len(), 32);
    }
}
