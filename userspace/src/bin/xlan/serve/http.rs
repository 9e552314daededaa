//! HTTP/1.1 over the plugin sockets (unix) and the metrics address (TCP), with hyper. Every connection is served on
//! the daemon's one thread (`spawn_local`): the library's operations enter namespaces, which is per thread.
use std::{convert::Infallible, future::Future, rc::Rc};

use http_body_util::{BodyExt, Full};
use hyper::{
    body::{Bytes, Incoming},
    header::CONTENT_TYPE,
    server::conn::http1,
    service::service_fn,
    Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// An answer: status, content type, body.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Serves one connection, each request answered by `answer(path, body)`.
pub fn serve_connection<S, F, Fut>(stream: S, answer: Rc<F>)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    F: Fn(String, Bytes) -> Fut + 'static,
    Fut: Future<Output = Reply> + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let answer = answer.clone();
        async move {
            let path = request.uri().path().to_owned();
            let reply = match request.into_body().collect().await {
                Ok(body) => answer(path, body.to_bytes()).await,
                Err(error) => Reply {
                    status: StatusCode::BAD_REQUEST,
                    content_type: "text/plain",
                    body: format!("reading the request: {error}").into_bytes(),
                },
            };
            Ok::<_, Infallible>(response(reply))
        }
    });
    tokio::task::spawn_local(async move {
        // A client that goes away mid-request is no error of the daemon's.
        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
    });
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    if let Ok(value) = reply.content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}
