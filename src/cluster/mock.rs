//! For unit tests on kube's mocked HTTP service (tower-test): the API server's answers as the
//! client reads them.

use ::http::Response;
use kube::client::Body;

/// A JSON answer with `status`; newline-terminated, as each event of a watch stream is.
pub(crate) fn answer(status: u16, body: serde_json::Value) -> Response<Body> {
    let mut bytes = serde_json::to_vec(&body).unwrap();
    bytes.push(b'\n');
    Response::builder()
        .status(status)
        .body(Body::from(bytes))
        .unwrap()
}
