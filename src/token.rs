//! The `[http] token`: `/status` and `/presign` answer only requests that
//! carry it as `Authorization: Bearer <token>`; `/healthz` and `/metrics`
//! stay open (they show counts only).

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::secret::Secret;

/// None when the request carries the configured token; otherwise the
/// answer to send: 403 when no token is configured (the endpoint is off),
/// 401 when the token is missing or wrong. Neither says anything about the
/// token itself.
pub fn refusal(headers: &HeaderMap, token: Option<&Secret>) -> Option<Response> {
    let Some(token) = token else {
        return Some((
            StatusCode::FORBIDDEN,
            Json(json!({"error": "this endpoint is off: set http.token in the daemon's configuration"})),
        )
            .into_response());
    };
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match offered {
        Some(offered) if same(offered.as_bytes(), token.expose().as_bytes()) => None,
        _ => Some((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(
                json!({"error": "missing or wrong token: send Authorization: Bearer <http.token>"}),
            ),
        )
            .into_response()),
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell an attacker how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_the_configured_token_passes() {
        let token = Secret::new("0123456789abcdef0123");
        assert!(refusal(&headers("Bearer 0123456789abcdef0123"), Some(&token)).is_none());
        for wrong in [
            "Bearer 0123456789abcdef0124",
            "Bearer 0123",
            "0123456789abcdef0123",
            "Basic x",
        ] {
            let r = refusal(&headers(wrong), Some(&token)).unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        }
        let r = refusal(&HeaderMap::new(), Some(&token)).unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn no_configured_token_means_off() {
        let r = refusal(&headers("Bearer anything-at-all-here"), None).unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}
