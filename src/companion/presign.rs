//! `/presign/{image_id}`: a short-lived presigned GET URL for a photo the
//! daemon has uploaded, for the plugin's download link to private buckets.
//! The plugin checks Piwigo's permissions first; the daemon signs only
//! objects it recorded, so the token cannot sign arbitrary keys.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sqlx::MySqlPool;

use crate::db::Tables;
use crate::redact::Redactor;
use crate::s3::Target;

fn refuse(code: StatusCode, message: String) -> Response {
    (code, Json(json!({"error": message}))).into_response()
}

/// The answer to `/presign/{image_id}` once the token was checked: a link
/// to the object recorded for the photo, signed with `target`'s keys.
pub async fn answer(
    pool: &MySqlPool,
    t: &Tables,
    target: &Target,
    redact: &Redactor,
    expiry: Duration,
    image_id: &str,
) -> Response {
    let Ok(image_id) = image_id.parse::<u32>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the photo id must be a number".into(),
        );
    };
    let row = crate::queue::records::object_of(pool, t, image_id).await;
    let (bucket, key) = match row {
        Ok(Some(row)) => row,
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("photo {image_id} has no recorded upload"),
            );
        }
        Err(e) => {
            tracing::warn!(image.id = image_id, error = %e, "presign: could not read the upload record");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "database: cannot read the upload record".into(),
            );
        }
    };
    match target.presign_get(&bucket, &key, expiry).await {
        Ok(url) => Json(json!({
            "url": url,
            "expires_in": expiry.as_secs(),
        }))
        .into_response(),
        Err(e) => {
            let message = redact.scrub(&e);
            tracing::warn!(image.id = image_id, error = %message, "presign failed");
            refuse(StatusCode::BAD_GATEWAY, message)
        }
    }
}
