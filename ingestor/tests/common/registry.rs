//! A Schema Registry inside the test, speaking the Confluent REST subset clients use:
//! `POST /subjects/{subject}/versions` (register: the same schema text keeps its id),
//! `GET /schemas/ids/{id}` and `GET /subjects/{subject}/versions/latest`. It can require
//! basic auth to register, refuse a subject as incompatible (HTTP 409), as a real registry does,
//! and answer HTTP 503 for a while, as a registry that is starting or overloaded does.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use serde_json::{Value, json};

#[derive(Default)]
struct State {
    /// Schema texts; the id is the position + 1.
    schemas: Vec<String>,
    subjects: BTreeMap<String, Vec<u32>>,
    incompatible: HashSet<String>,
    /// `Basic …` the registry requires, when it requires one.
    auth: Option<String>,
    registrations: usize,
    /// Requests still to answer with 503.
    unavailable: usize,
    /// Requests answered with 503 so far.
    refused_unavailable: usize,
}

pub struct TestRegistry {
    pub port: u16,
    state: Arc<Mutex<State>>,
    _server: super::server::Background,
}

impl TestRegistry {
    /// A registry that requires `user`/`password` when given.
    pub fn start(credentials: Option<(&str, &str)>) -> Self {
        let state = Arc::new(Mutex::new(State {
            auth: credentials.map(|(u, p)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            }),
            ..State::default()
        }));
        let shared = state.clone();
        let server = super::server::http(move |req| handle(shared.clone(), req));
        Self {
            port: server.port,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers registrations under `subject` with 409.
    pub fn refuse_as_incompatible(&self, subject: &str) {
        self.lock().incompatible.insert(subject.to_owned());
    }

    /// Answers the next `requests` requests, whatever they ask, with 503.
    pub fn unavailable_for(&self, requests: usize) {
        self.lock().unavailable = requests;
    }

    /// How many requests were answered with 503.
    pub fn refused_unavailable(&self) -> usize {
        self.lock().refused_unavailable
    }

    /// The latest id registered under `subject`.
    pub fn id_of(&self, subject: &str) -> Option<u32> {
        self.lock().subjects.get(subject)?.last().copied()
    }

    pub fn registrations(&self) -> usize {
        self.lock().registrations
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("registry state")
    }
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path: Vec<String> = req
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().expect("registry state");
    if s.unavailable > 0 {
        s.unavailable -= 1;
        s.refused_unavailable += 1;
        return reply(
            503,
            json!({"error_code": 50302, "message": "Service Unavailable: the registry is starting"}),
        );
    }
    // Credentials guard registration (the service's part); reads are open to the test's
    // consumer.
    if method == Method::POST && s.auth.is_some() && s.auth != auth {
        return reply(401, json!({"error_code": 401, "message": "Unauthorized"}));
    }
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (method, p.as_slice()) {
        (Method::POST, ["subjects", subject, "versions"]) => {
            if s.incompatible.contains(*subject) {
                return reply(
                    409,
                    json!({"error_code": 409, "message": format!("Schema being registered is incompatible with an earlier schema for subject \"{subject}\"")}),
                );
            }
            let Some(schema) = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["schema"].as_str().map(str::to_owned))
            else {
                return reply(
                    422,
                    json!({"error_code": 42201, "message": "Invalid schema"}),
                );
            };
            s.registrations += 1;
            let id = match s.schemas.iter().position(|t| *t == schema) {
                Some(i) => i as u32 + 1,
                None => {
                    s.schemas.push(schema);
                    s.schemas.len() as u32
                }
            };
            let versions = s.subjects.entry((*subject).to_owned()).or_default();
            if !versions.contains(&id) {
                versions.push(id);
            }
            reply(200, json!({"id": id}))
        }
        (Method::GET, ["schemas", "ids", id]) => match id
            .parse::<usize>()
            .ok()
            .and_then(|i| s.schemas.get(i.wrapping_sub(1)))
        {
            Some(schema) => reply(200, json!({"schema": schema})),
            None => reply(
                404,
                json!({"error_code": 40403, "message": "Schema not found"}),
            ),
        },
        (Method::GET, ["subjects", subject, "versions", "latest"]) => {
            match s.subjects.get(*subject).and_then(|v| v.last()) {
                Some(id) => {
                    let version = s.subjects[*subject].len();
                    let schema = s.schemas[*id as usize - 1].clone();
                    reply(
                        200,
                        json!({"subject": subject, "version": version, "id": id, "schema": schema}),
                    )
                }
                None => reply(
                    404,
                    json!({"error_code": 40401, "message": "Subject not found"}),
                ),
            }
        }
        _ => reply(
            404,
            json!({"error_code": 404, "message": "HTTP 404 Not Found"}),
        ),
    }
}
