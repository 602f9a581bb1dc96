//! The connection loop of plain HTTP and TLS: hyper-util's server with two
//! deadlines of Scimitar's own, because `axum::serve` has none and hyper's
//! `header_read_timeout` runs from the moment a connection goes idle (one
//! value for both):
//!
//! - **idle**: a connection on which no request is being processed and no
//!   byte has moved for this long is closed (before its first request and
//!   between keep-alive requests);
//! - **header read**: once the first byte of a request has arrived, its
//!   headers must be complete within this time (slowloris).
//!
//! While a request is processed no deadline of this module runs: the
//! request and body timeouts of the handlers apply.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The most a connection buffers (hyper's default is about 400 KB): the
/// buffer grows while a large body arrives and keeps its size while the
/// connection stays open, so an idle connection would hold it. Bodies
/// are read in chunks of at most this size; headers must fit in it too
/// (`Settings::max_header_bytes` is smaller).
const READ_BUFFER_MAX: usize = 64 * 1024;

/// The connection deadlines.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: Duration,
    pub header_read: Duration,
}

/// Serves connections to `app`; `accept` turns a TCP connection into the
/// stream to speak HTTP on (TLS does its handshake there), `None` to drop
/// it. Returns once `shutdown` resolves and in-flight requests are done
/// (at most 30 s more).
pub(crate) async fn serve<A, F, S>(
    listener: tokio::net::TcpListener,
    app: Router,
    timeouts: Timeouts,
    accept: A,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    A: Fn(tokio::net::TcpStream, SocketAddr) -> F,
    F: Future<Output = Option<S>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The deadlines below replace hyper's (which would close idle
    // connections after the header timeout).
    builder.http1().header_read_timeout(None).max_buf_size(READ_BUFFER_MAX);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors, say: give in-flight
                    // connections time to finish rather than spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let stream = accept(tcp, peer);
        let (builder, app, watcher) = (builder.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let Some(stream) = stream.await else { return };
            let activity = Arc::new(Mutex::new(Activity::new()));
            let io = TokioIo::new(Watched::new(stream, activity.clone(), timeouts));
            let service = Tracked {
                inner: TowerToHyperService::new(app),
                peer,
                activity,
            };
            let conn = builder.serve_connection_with_upgrades(io, service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {}
    }
    Ok(())
}

/// What a connection is doing, as far as its deadlines care.
#[derive(Debug)]
struct Activity {
    /// Requests being processed.
    in_flight: usize,
    /// When the connection went idle or last moved a byte while idle.
    idle_since: Instant,
    /// When the first byte of the next request's head arrived.
    head_since: Option<Instant>,
    /// The task waiting to read: woken when the connection goes idle, so
    /// that it waits again with a deadline (hyper, busy, may have last
    /// polled the stream while no deadline ran).
    reader: Option<Waker>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: 0,
            idle_since: Instant::now(),
            head_since: None,
            reader: None,
        }
    }

    /// The instant the connection is closed at, unless something happens.
    fn deadline(&self, t: Timeouts) -> Option<Instant> {
        if self.in_flight > 0 {
            return None;
        }
        Some(match self.head_since {
            Some(head) => head + t.header_read,
            None => self.idle_since + t.idle,
        })
    }
}

/// The stream of a connection, closed (an error to hyper) when its
/// deadline passes while hyper waits for the client.
struct Watched<S> {
    io: S,
    activity: Arc<Mutex<Activity>>,
    timeouts: Timeouts,
    timer: Pin<Box<Sleep>>,
}

impl<S> Watched<S> {
    fn new(io: S, activity: Arc<Mutex<Activity>>, timeouts: Timeouts) -> Self {
        let first = Instant::now() + timeouts.idle;
        Watched {
            io,
            activity,
            timeouts,
            timer: Box::pin(tokio::time::sleep_until(first)),
        }
    }

    fn moved(&self, read: bool) {
        if let Ok(mut a) = self.activity.lock()
            && a.in_flight == 0
        {
            if read {
                a.head_since.get_or_insert_with(Instant::now);
            } else {
                a.idle_since = Instant::now();
            }
        }
    }

    /// `Ready` with an error when the deadline has passed.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = match self.activity.lock() {
            Ok(mut a) => {
                if !a.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    a.reader = Some(cx.waker().clone());
                }
                a.deadline(self.timeouts)
            }
            Err(_) => None,
        };
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle or sent its request headers too slowly",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.moved(true);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.expired(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved(false);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The application as hyper calls it: gives handlers the peer address
/// (`ConnectInfo<SocketAddr>`) and tells the connection when a request
/// is being processed.
#[derive(Clone)]
struct Tracked {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
    activity: Arc<Mutex<Activity>>,
}

/// Marks a request in flight; when the last one ends the connection is
/// idle again.
struct InFlight(Arc<Mutex<Activity>>);

impl InFlight {
    fn begin(activity: &Arc<Mutex<Activity>>) -> Self {
        if let Ok(mut a) = activity.lock() {
            a.in_flight += 1;
            a.head_since = None;
        }
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let reader = match self.0.lock() {
            Ok(mut a) => {
                a.in_flight = a.in_flight.saturating_sub(1);
                a.idle_since = Instant::now();
                if a.in_flight == 0 { a.reader.take() } else { None }
            }
            Err(_) => None,
        };
        if let Some(w) = reader {
            w.wake();
        }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Answer;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let in_flight = InFlight::begin(&self.activity);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let r = answer.await;
            drop(in_flight);
            r
        })
    }
}
