//! The mock model API server: an HTTP/1.1 server on `127.0.0.1:<port 0>` with its own
//! thread and tokio runtime, so sync and async tests use it alike.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::script::{Reply, Script};
use crate::{anthropic, gemini, openai};

/// Which model API a request was addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Anthropic Messages (`/v1/messages`), called by Claude Code.
    Anthropic,
    /// OpenAI Responses (`/v1/responses`), called by Codex.
    OpenAi,
    /// Gemini (`/v1beta/models/{model}:…`), called by Gemini CLI.
    Gemini,
}

/// One request the server received, as logged for assertions.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// 0-based arrival order over all requests to this server.
    pub seq: usize,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/v1/messages`.
    pub path: String,
    /// Raw query string without `?`, e.g. `beta=true` or `alt=sse`.
    pub query: Option<String>,
    /// Headers in arrival order, names lower-case; values that are not UTF-8 are replaced lossily.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `None` when it is empty or not JSON.
    pub body: Option<Value>,
    /// Body length in bytes.
    pub body_len: usize,
    /// The API this request was addressed to, when it is a known endpoint.
    pub api: Option<Api>,
    /// The scripted reply it got, for generation requests (`None` for the others).
    pub reply: Option<Reply>,
    /// The HTTP status the server answered.
    pub status: u16,
}

impl RecordedRequest {
    /// The value of header `name` (case-insensitive), first occurrence.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding `127.0.0.1:0` or setting up the listener failed.
    #[error("mock model server: cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The tokio runtime or the server thread could not be started.
    #[error("mock model server: cannot start its runtime thread: {0}")]
    Runtime(#[source] std::io::Error),
}

#[derive(Debug)]
struct Inner {
    script: Script,
    log: Vec<RecordedRequest>,
}

#[derive(Debug, Clone)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take the log down with it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running mock model API server. Stops when dropped.
///
/// Endpoints (all on `http://127.0.0.1:<port>`):
/// - `POST /v1/messages` (Anthropic Messages; streaming or `"stream": false`) and
///   `POST /v1/messages/count_tokens` (`{"input_tokens": n}`);
/// - `POST /v1/responses` (OpenAI Responses, SSE);
/// - `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` (Gemini SSE), `:countTokens`
///   (`{"totalTokens": n}`), and `:generateContent`: Gemini CLI's side calls (model router,
///   next-speaker and loop checks, which ask for JSON). Those do not consume the script: they
///   get a minimal instance of the response schema they send (`{}` for JSON without a
///   schema), else [`Script::text`];
/// - anything else: `404` with a JSON error body, and logged.
///
/// Generation requests get the next [`Reply`] of the [`Script`]; a generation request whose
/// body is not JSON gets `400`. Token counts in `usage` are `body bytes / 4`.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts a server on `127.0.0.1` with an OS-chosen port, answering with `script`.
    ///
    /// # Errors
    /// [`ServerError::Bind`] when the socket cannot be bound, [`ServerError::Runtime`] when the
    /// server thread or its runtime cannot start.
    pub fn start(script: Script) -> Result<Self, ServerError> {
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(ServerError::Bind)?;
        listener.set_nonblocking(true).map_err(ServerError::Bind)?;
        let addr = listener.local_addr().map_err(ServerError::Bind)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let shared = Shared(Arc::new(Mutex::new(Inner {
            script,
            log: Vec::new(),
        })));
        let app = axum::Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("vnx-mock-model-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // Dropping the runtime at the end cancels open (e.g. slow) streams.
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(ServerError::Runtime)?;
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The TCP port the server listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the script (and its queue) for the requests still to come.
    pub fn set_script(&self, script: Script) {
        self.shared.lock().script = script;
    }

    /// A copy of every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    /// The generation requests (those that consumed a scripted [`Reply`]) so far.
    pub fn model_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.reply.is_some())
            .collect()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a known path asks for.
enum Endpoint {
    Messages,
    CountTokens(Api),
    Responses,
    GeminiStream(String),
    GeminiGenerate(String),
}

fn route(method: &Method, path: &str) -> Option<Endpoint> {
    if method != Method::POST {
        return None;
    }
    match path {
        "/v1/messages" => return Some(Endpoint::Messages),
        "/v1/messages/count_tokens" => return Some(Endpoint::CountTokens(Api::Anthropic)),
        "/v1/responses" => return Some(Endpoint::Responses),
        _ => {}
    }
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, action) = rest.rsplit_once(':')?;
    let model = model.to_owned();
    match action {
        "streamGenerateContent" => Some(Endpoint::GeminiStream(model)),
        "generateContent" => Some(Endpoint::GeminiGenerate(model)),
        "countTokens" => Some(Endpoint::CountTokens(Api::Gemini)),
        _ => None,
    }
}

fn api_of(endpoint: &Endpoint) -> Api {
    match endpoint {
        Endpoint::Messages => Api::Anthropic,
        Endpoint::CountTokens(api) => *api,
        Endpoint::Responses => Api::OpenAi,
        Endpoint::GeminiStream(_) | Endpoint::GeminiGenerate(_) => Api::Gemini,
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn sse_response(frames: Vec<String>, delay: Duration) -> Response {
    let stream = futures_util::stream::unfold(frames.into_iter(), move |mut frames| async move {
        let frame = frames.next()?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(frame)),
            frames,
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn error_response(api: Api, status: u16, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match api {
        Api::Anthropic => anthropic::error_body(code.as_u16()),
        Api::OpenAi => openai::error_body(code.as_u16()),
        Api::Gemini => gemini::error_body(code.as_u16()),
    };
    let mut response = json_response(code, body.to_string());
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let endpoint = route(&method, &path);
    let api = endpoint.as_ref().map(api_of);

    // One lock for taking the reply, building the (lazy) response and logging, so that the
    // log order is the order in which replies were taken. Nothing here awaits.
    let mut inner = shared.lock();
    let generation = matches!(
        endpoint,
        Some(Endpoint::Messages | Endpoint::Responses | Endpoint::GeminiStream(_))
    );
    let reply = (generation && parsed.is_some()).then(|| inner.script.next_reply());
    let script = &inner.script;

    let response = match (&endpoint, &parsed, &reply) {
        (None, _, _) => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("vnx mock: no route for {method} {path}")}})
                .to_string(),
        ),
        (Some(Endpoint::CountTokens(Api::Gemini)), _, _) => json_response(
            StatusCode::OK,
            json!({"totalTokens": crate::sse::tokens(body.len())}).to_string(),
        ),
        (Some(Endpoint::CountTokens(_)), _, _) => json_response(
            StatusCode::OK,
            json!({"input_tokens": crate::sse::tokens(body.len())}).to_string(),
        ),
        (Some(Endpoint::GeminiGenerate(model)), Some(req), _) => json_response(
            StatusCode::OK,
            gemini::side_answer(req, model, script, body.len()),
        ),
        (Some(_), None, _) => json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "vnx mock: request body is not JSON"}}).to_string(),
        ),
        (Some(e), Some(req), Some(reply)) => answer(e, req, reply, script, body.len()),
        // Unreachable: a generation request with a JSON body always takes a reply.
        (Some(_), Some(_), None) => json_response(StatusCode::INTERNAL_SERVER_ERROR, "{}".into()),
    };

    let record = RecordedRequest {
        seq: inner.log.len(),
        method: method.to_string(),
        path,
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: parsed,
        body_len: body.len(),
        api,
        reply,
        status: response.status().as_u16(),
    };
    inner.log.push(record);
    response
}

fn answer(
    endpoint: &Endpoint,
    req: &Value,
    reply: &Reply,
    script: &Script,
    input_bytes: usize,
) -> Response {
    if let Reply::Status {
        status,
        retry_after,
    } = reply
    {
        return error_response(api_of(endpoint), *status, *retry_after);
    }
    let delay = script.event_delay;
    match endpoint {
        Endpoint::Messages if req["stream"] == Value::Bool(true) => {
            sse_response(anthropic::stream(reply, script, req, input_bytes), delay)
        }
        Endpoint::Messages => json_response(
            StatusCode::OK,
            anthropic::message(reply, script, req, input_bytes),
        ),
        Endpoint::Responses => sse_response(openai::stream(reply, script, req, input_bytes), delay),
        Endpoint::GeminiStream(model) => sse_response(
            gemini::stream(reply, script, req, model, input_bytes),
            delay,
        ),
        Endpoint::GeminiGenerate(_) | Endpoint::CountTokens(_) => {
            json_response(StatusCode::OK, "{}".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    use super::*;

    /// One HTTP/1.1 request over a fresh connection; returns the raw response text.
    fn send(server: &MockServer, method: &str, target: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out
    }

    const MESSAGES: &str =
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn malformed_json_is_a_400_and_consumes_no_reply() {
        let server = MockServer::start(Script::status(500)).unwrap();
        let out = send(&server, "POST", "/v1/messages?beta=true", "{not json");
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        let log = server.requests();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].reply, None);
        assert_eq!(log[0].query.as_deref(), Some("beta=true"));
        assert!(server.model_requests().is_empty());
    }

    #[test]
    fn unknown_paths_are_a_logged_404() {
        let server = MockServer::start(Script::default()).unwrap();
        let out = send(&server, "GET", "/v1/models", "");
        assert!(out.starts_with("HTTP/1.1 404"), "{out}");
        assert_eq!(server.requests()[0].path, "/v1/models");
        assert_eq!(server.requests()[0].api, None);
    }

    #[test]
    fn rate_limit_sends_retry_after_and_the_api_error_shape() {
        let server = MockServer::start(Script::rate_limited(7)).unwrap();
        let out = send(&server, "POST", "/v1/messages", MESSAGES);
        assert!(out.starts_with("HTTP/1.1 429"), "{out}");
        assert!(out.contains("retry-after: 7\r\n"), "{out}");
        assert!(out.contains(r#""type":"rate_limit_error""#), "{out}");
        let out = send(
            &server,
            "POST",
            "/v1beta/models/g:streamGenerateContent?alt=sse",
            "{}",
        );
        assert!(out.contains("RESOURCE_EXHAUSTED"), "{out}");
    }

    #[test]
    fn first_k_fail_then_text_with_the_scripted_text() {
        let server = MockServer::start(Script::text("TODO: report").failing_first(1, 500)).unwrap();
        assert!(send(&server, "POST", "/v1/responses", "{}").starts_with("HTTP/1.1 500"));
        let out = send(
            &server,
            "POST",
            "/v1/responses",
            r#"{"model":"x","input":[]}"#,
        );
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("event: response.completed"), "{out}");
        assert!(out.contains(r#""delta":"TODO: ""#), "{out}");
        assert!(out.contains(r#""input_tokens_details""#), "{out}");
    }

    #[test]
    fn slow_streams_pause_before_every_event() {
        let delay = Duration::from_millis(40);
        let server = MockServer::start(Script::text("a b c").with_event_delay(delay)).unwrap();
        let start = Instant::now();
        let out = send(&server, "POST", "/v1/messages", MESSAGES);
        let events = out.matches("event: ").count();
        // message_start, block start, 3 deltas, block stop, message_delta, message_stop.
        assert_eq!(events, 8, "{out}");
        assert!(start.elapsed() >= delay * 8);
    }

    #[test]
    fn malformed_streams_end_with_a_line_that_is_not_json() {
        let server = MockServer::start(Script::malformed()).unwrap();
        let out = send(&server, "POST", "/v1/messages", MESSAGES);
        assert!(out.contains("event: message_start"), "{out}");
        assert!(!out.contains("message_stop"), "{out}");
        assert!(out.contains(BROKEN_LINE), "{out}");
    }

    #[test]
    fn count_tokens_and_side_calls_do_not_consume_the_script() {
        let server = MockServer::start(Script::status(500)).unwrap();
        let out = send(&server, "POST", "/v1/messages/count_tokens", MESSAGES);
        assert!(out.contains(r#""input_tokens":"#), "{out}");
        let side = r#"{"contents":[],"generationConfig":{"responseMimeType":"application/json"}}"#;
        let out = send(&server, "POST", "/v1beta/models/g:generateContent", side);
        assert!(
            out.starts_with("HTTP/1.1 200") && out.contains(r#""text":"{}""#),
            "{out}"
        );
        assert!(server.model_requests().is_empty());
    }

    const BROKEN_LINE: &str = "this stream was cut o";
}
