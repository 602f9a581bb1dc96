//! A webhook receiver for tests: an HTTP/1.1 server on an ephemeral
//! loopback port that verifies the Standard Webhooks signature of every
//! request (a bad one is answered 401 and recorded apart), records what it
//! gets, and fails on demand: a status, 429 with `Retry-After`, a redirect,
//! a slow answer, no answer at all, or being down (and coming back on the
//! same port).
//!
//! Written on plain tokio sockets so that every fault is exactly what a
//! test scripts, keep-alive included.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scimitar_webhooks::sign::{self, Headers, Key};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How the receiver answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 OK`.
    Ok,
    /// This status, with a short body.
    Status(u16),
    /// `429` with `Retry-After: value`.
    TooManyRequests(String),
    /// `301` to this location.
    Redirect(String),
    /// `200` whose body comes after this long.
    SlowBody(Duration),
    /// The request is read, then nothing is sent and the connection stays
    /// open until the sender gives up.
    NoAnswer,
}

/// A verified delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: Value,
    /// How the receiver answered it.
    pub answered: Behaviour,
    /// When it arrived (its body read and verified).
    pub received_at: std::time::SystemTime,
}

/// A request whose signature did not verify.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub id: Option<String>,
    pub reason: String,
}

#[derive(Default)]
struct State {
    keys: Vec<Key>,
    script: VecDeque<Behaviour>,
    otherwise: Option<Behaviour>,
    received: Vec<Delivery>,
    rejected: Vec<Rejected>,
}

pub struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    tasks: Mutex<Option<JoinSet<()>>>,
}

impl Receiver {
    /// A receiver that accepts deliveries signed with any of `secrets`
    /// (`whsec_…`).
    pub async fn start(secrets: &[&str]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let state = Arc::new(Mutex::new(State::default()));
        let r = Receiver {
            addr,
            state,
            tasks: Mutex::new(None),
        };
        r.set_secrets(secrets);
        r.serve(listener);
        r
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The secrets it verifies with from now on.
    pub fn set_secrets(&self, secrets: &[&str]) {
        let keys = secrets
            .iter()
            .map(|s| Key::parse(s).expect("a webhook secret"))
            .collect();
        self.state.lock().unwrap().keys = keys;
    }

    /// The next requests are answered so, one each, in order; then as set by
    /// [`Receiver::otherwise`] (`200` by default).
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.state.lock().unwrap().script.extend(behaviours);
    }

    /// How requests are answered when the script is empty.
    pub fn otherwise(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().otherwise = Some(behaviour);
    }

    /// The verified deliveries so far (failed answers included: see
    /// `answered`).
    pub fn received(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().received.clone()
    }

    /// The verified deliveries answered 2xx, in the order received.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|d| accepted(d))
            .cloned()
            .collect()
    }

    /// Requests whose signature did not verify.
    pub fn rejected(&self) -> Vec<Rejected> {
        self.state.lock().unwrap().rejected.clone()
    }

    /// Waits until `n` deliveries were accepted (or `timeout` passed), and
    /// returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Counted, not copied: copying every delivery each time held the
            // lock the receiver's connections take for milliseconds once
            // thousands had come (a cost the benchmarks measured).
            let got = self
                .state
                .lock()
                .unwrap()
                .received
                .iter()
                .filter(|d| accepted(d))
                .count();
            if got >= n || tokio::time::Instant::now() >= deadline {
                return self.accepted();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Goes down: stops listening and drops every open connection.
    pub fn down(&self) {
        if let Some(mut tasks) = self.tasks.lock().unwrap().take() {
            tasks.abort_all();
        }
    }

    /// Comes back on the same port.
    pub async fn up(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the receiver cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let state = self.state.clone();
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let conns_for_accept = conns.clone();
        tasks.spawn(async move {
            // Connections are owned by the accept task: aborting it drops them.
            let _owner = DropAll(conns_for_accept.clone());
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                conns_for_accept.lock().unwrap().spawn(connection(stream, state));
            }
        });
        *self.tasks.lock().unwrap() = Some(tasks);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

struct DropAll(Arc<Mutex<JoinSet<()>>>);

impl Drop for DropAll {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.lock() {
            set.abort_all();
        }
    }
}

/// Whether a delivery was answered 2xx.
fn accepted(d: &Delivery) -> bool {
    matches!(d.answered, Behaviour::Ok | Behaviour::SlowBody(_))
}

/// Serves the requests of one connection (keep-alive) until it closes.
async fn connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let (id, ts, sig) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let verdict = {
            let st = state.lock().unwrap();
            sign::verify(
                &st.keys,
                Headers {
                    id: id.as_deref(),
                    timestamp: ts.as_deref(),
                    signature: sig.as_deref(),
                },
                &body,
                now,
                sign::DEFAULT_TOLERANCE_SECS,
            )
        };
        if let Err(e) = verdict {
            state.lock().unwrap().rejected.push(Rejected {
                id,
                reason: e.to_string(),
            });
            if write(&mut stream, 401, &[], "bad signature").await.is_err() {
                return;
            }
            continue;
        }
        let behaviour = {
            let mut st = state.lock().unwrap();
            let b = st
                .script
                .pop_front()
                .or_else(|| st.otherwise.clone())
                .unwrap_or(Behaviour::Ok);
            st.received.push(Delivery {
                id: id.unwrap_or_default(),
                timestamp: ts.and_then(|t| t.parse().ok()).unwrap_or_default(),
                signature: sig.unwrap_or_default(),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                answered: b.clone(),
                received_at: std::time::SystemTime::now(),
            });
            b
        };
        let sent = match behaviour {
            Behaviour::Ok => write(&mut stream, 200, &[], "ok").await,
            Behaviour::Status(s) => write(&mut stream, s, &[], "failing on purpose").await,
            Behaviour::TooManyRequests(after) => write(&mut stream, 429, &[("retry-after", &after)], "slow down").await,
            Behaviour::Redirect(to) => write(&mut stream, 301, &[("location", &to)], "moved").await,
            Behaviour::SlowBody(wait) => {
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(wait).await;
                stream.write_all(b"ok").await
            }
            Behaviour::NoAnswer => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

async fn write(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &str) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    stream.write_all(out.as_bytes()).await
}

/// Reads one request (head and `content-length` body); `None` when the
/// connection closed.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some((head, body));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
