//! Errors as RFC 9457 `application/problem+json`, with stable `type` URIs clients can match on.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// Every problem type the service answers with: `urn:modelguard:problem:<slug>`.
pub const TYPES: &[&str] = &[
    "unauthorized",
    "forbidden",
    "not-found",
    "invalid-upload",
    "invalid-name",
    "payload-too-large",
    "upload-timeout",
    "queue-full",
    "rate-limited",
    "job-running",
    "headers-too-large",
    "internal",
];

#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Problem {
        debug_assert!(TYPES.contains(&slug));
        Problem {
            kind: format!("urn:modelguard:problem:{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed for this token",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn invalid_upload(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-upload",
            "Invalid upload",
            detail,
        )
    }

    pub fn invalid_name(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-name",
            "Invalid name",
            detail,
        )
    }

    pub fn too_large(limit: u64) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Upload too large",
            format!("the upload is larger than the limit of {limit} bytes"),
        )
    }

    pub fn upload_timeout(idle: Duration) -> Problem {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "upload-timeout",
            "Upload too slow",
            format!("no data arrived for {} s", idle.as_secs()),
        )
    }

    pub fn queue_full(retry_after: u64) -> Problem {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue-full",
            "Queue full",
            "too many jobs are waiting; retry later",
        );
        p.retry_after = Some(retry_after);
        p
    }

    pub fn rate_limited(retry_after: u64) -> Problem {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            "this token made too many requests; retry later",
        );
        p.retry_after = Some(retry_after);
        p
    }

    pub fn job_running() -> Problem {
        Problem::new(
            StatusCode::CONFLICT,
            "job-running",
            "Job is running",
            "a running job cannot be deleted; retry when it has ended",
        )
    }

    pub fn headers_too_large(limit: usize) -> Problem {
        Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request headers too large",
            format!("the request headers are larger than {limit} bytes"),
        )
    }

    pub fn internal(detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        tracing::error!(error = %detail, "internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the service failed; the error is in its log",
        )
    }

    pub fn from_multipart(e: axum::extract::multipart::MultipartError) -> Problem {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Problem::new(
                status,
                "payload-too-large",
                "Upload too large",
                e.body_text(),
            );
        }
        Problem::invalid_upload(e.body_text())
    }
}

impl From<super::store::StoreError> for Problem {
    fn from(e: super::store::StoreError) -> Problem {
        Problem::internal(e.to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}
