//! A lean HTTP/1.1 client: one keep-alive connection per worker, no pool,
//! no redirects, no decompression. It reconnects when the server closes.

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Where requests go: the server's address and the Tenant URL's path.
#[derive(Debug)]
pub struct Target {
    /// `host:port`, for connecting and for the `Host` header.
    pub authority: String,
    /// Path of the Tenant URL, without a trailing slash (`/scim/default/v2`).
    pub base_path: String,
    host: HeaderValue,
    auth: HeaderValue,
}

impl Target {
    /// Parses an `http://host[:port]/path` Tenant URL.
    pub fn parse(url: &str, token: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// URLs are supported: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("no host in {url}");
        }
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            host: HeaderValue::from_str(&authority)?,
            auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
            authority,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// A path below the Tenant URL.
    pub fn path(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base_path)
    }
}

/// One response: status and whole body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// One connection, reopened on demand.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Self {
        Self { target, sender: None }
    }

    async fn connect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(&self.target.authority)
            .await
            .with_context(|| format!("connecting to {}", self.target.authority))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends when the server closes it or the sender is dropped.
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request (`path_and_query` is absolute) and reads the whole response.
    pub async fn send(&mut self, method: Method, path_and_query: &str, body: Option<Bytes>) -> Result<Reply> {
        let reuse = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        if !reuse {
            self.connect().await?;
        }
        let Some(sender) = self.sender.as_mut() else {
            bail!("no connection");
        };
        if sender.ready().await.is_err() {
            // The server closed an idle connection: open a new one once.
            self.connect().await?;
        }
        let Some(sender) = self.sender.as_mut() else {
            bail!("no connection");
        };
        let t = &self.target;
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(HOST, t.host.clone())
            .header(AUTHORIZATION, t.auth.clone())
            .header(ACCEPT, HeaderValue::from_static("application/scim+json"));
        let body = match body {
            Some(b) => {
                builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/scim+json"));
                Full::new(b)
            }
            None => Full::new(Bytes::new()),
        };
        let req = builder.body(body)?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = resp.status().as_u16();
        let close = resp.version() == hyper::Version::HTTP_10
            || resp
                .headers()
                .get(CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        if close {
            self.sender = None;
        }
        Ok(Reply { status, body })
    }
}
