//! The proxy's own responses (404, 502, 503, 504): short plain-text pages that say what went wrong in
//! slipway's terms (app, release, instance), so an operator reading one knows where to look.
//!
//! Plain text rather than HTML: the messages can contain a request's host or path, and text/plain cannot
//! be turned into markup by them.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::body::ResponseBody;

/// The page's text: `slipway: 502 Bad Gateway — <message>`.
pub(crate) fn text(status: StatusCode, message: &str) -> String {
    format!(
        "slipway: {} {} \u{2014} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        message
    )
}

/// The page's headers besides framing.
pub(crate) const CONTENT_TYPE_VALUE: &str = "text/plain; charset=utf-8";
pub(crate) const CACHE_CONTROL_VALUE: &str = "no-store";

/// The page as a response for hyper to send.
pub(crate) fn page(status: StatusCode, message: &str) -> Response<ResponseBody> {
    let text = text(status, message);
    let mut response = Response::new(ResponseBody::full(Bytes::from(text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_VALUE));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn page_names_status_and_message() {
        let response = page(
            StatusCode::SERVICE_UNAVAILABLE,
            "no ready instance of app web",
        );
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(
            &body[..],
            "slipway: 503 Service Unavailable \u{2014} no ready instance of app web\n".as_bytes()
        );
    }
}
