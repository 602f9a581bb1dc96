//! Request bodies and the memory they may take.
//!
//! A JSON body parsed into a `serde_json::Value` tree takes from a few to
//! about 150 times its size in memory (`[[0],[0],…]`: four bytes of text
//! become a 80-byte value and a vector of four). So before anything is
//! parsed:
//!
//! - the bytes of a body are counted against a budget shared by all
//!   requests (`Budget`, the bytes part) before they are read: a request
//!   that does not fit waits (at most 5 s, and half its body timeout),
//!   then gets 503 with `Retry-After`;
//! - a linear scan of the bytes (`scan`) checks the nesting depth and the
//!   number of elements of each array and object, refuses unknown
//!   attributes at the top of a resource, and estimates the size of the
//!   tree that parsing would build; the tree, twice over (what is built
//!   from it while the request runs), is counted against the trees part of
//!   the budget. A body whose tree could never fit is answered 413.
//!
//! Bytes are counted before trees and a request holding trees waits for
//! nothing, so waiting requests cannot block each other for good.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use scimitar_protocol::ScimError;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Budget units: KiB, so that a semaphore's `u32` counts suffice.
const UNIT: usize = 1024;

/// What a parsed tree is charged, per byte of its estimated size: the
/// tree, and what handlers build from it (the normalised document, the
/// representation returned) while it is alive.
const TREE_FACTOR: usize = 2;

/// How long a request waits at most for room in the budget before it is
/// answered 503 (and at most half its body timeout).
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Memory for request bodies in flight, shared by all requests.
pub struct Budget {
    bytes: Arc<Semaphore>,
    bytes_units: usize,
    trees: Arc<Semaphore>,
    trees_units: usize,
}

/// A request's share of the budget, given back when dropped.
#[derive(Default)]
pub struct Charge {
    bytes: Option<OwnedSemaphorePermit>,
    tree: Option<OwnedSemaphorePermit>,
}

impl Charge {
    /// The bytes' share, once the body is parsed and its bytes dropped.
    pub fn release_bytes(&mut self) {
        self.bytes = None;
    }
}

fn units(bytes: usize) -> usize {
    bytes.div_ceil(UNIT)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl Budget {
    /// `total` bytes: a quarter for bodies as received (at least
    /// `largest_body`, so that any body the limits allow fits), the rest
    /// for parsed trees.
    pub fn new(total: usize, largest_body: usize) -> Self {
        let bytes_units = units((total / 4).max(largest_body)).min(Semaphore::MAX_PERMITS);
        let trees_units = units(total - total / 4).clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(bytes_units)),
            bytes_units,
            trees: Arc::new(Semaphore::new(trees_units)),
            trees_units,
        }
    }

    /// Bytes of the budget in use, for `/metrics`.
    pub fn in_use(&self) -> usize {
        let used = |s: &Semaphore, total: usize| total.saturating_sub(s.available_permits());
        (used(&self.bytes, self.bytes_units) + used(&self.trees, self.trees_units)) * UNIT
    }

    /// The largest tree estimate a request may hold.
    pub fn max_tree(&self) -> usize {
        self.trees_units * UNIT / TREE_FACTOR
    }

    /// Waits until `bytes` fit, at most until `deadline`.
    async fn take_bytes(&self, charge: &mut Charge, bytes: usize, deadline: Instant) -> ApiResult<()> {
        let permit = acquire(&self.bytes, units(bytes), deadline).await?;
        charge.bytes = Some(permit);
        Ok(())
    }

    /// Counts a parsed tree of `estimate` bytes; 413 if it can never fit.
    pub async fn take_tree(&self, charge: &mut Charge, estimate: usize, deadline: Instant) -> ApiResult<()> {
        if estimate > self.max_tree() {
            return Err(ScimError::payload_too_large(format!(
                "parsed, this body would take about {} of memory; the server allows {} per request",
                mib(estimate.saturating_mul(TREE_FACTOR)),
                mib(self.max_tree() * TREE_FACTOR)
            ))
            .into());
        }
        let n = units(estimate.saturating_mul(TREE_FACTOR));
        let permit = acquire(&self.trees, n, deadline).await?;
        match &mut charge.tree {
            Some(held) => held.merge(permit),
            None => charge.tree = Some(permit),
        }
        Ok(())
    }
}

async fn acquire(sem: &Arc<Semaphore>, n: usize, deadline: Instant) -> ApiResult<OwnedSemaphorePermit> {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    let wait = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(wait, sem.clone().acquire_many_owned(n)).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            metrics::counter!("scimitar_body_memory_shed_total").increment(1);
            Err(ApiError(ScimError::new(
                503,
                None,
                "the server is at its limit of memory for request bodies; retry shortly",
            ))
            .with_retry_after(1))
        }
    }
}

/// Checks the content type and reads a body of at most `limit` bytes,
/// counted against the budget. The body must arrive, budget included,
/// within the body timeout.
pub async fn read(state: &AppState, headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<(Bytes, Charge)> {
    if let Some(ct) = content_type(headers) {
        let json_like = ct.is_empty()
            || ct == "application/json"
            || ct == "application/scim+json"
            || ct.ends_with("+json")
            || ct == "text/json";
        if !json_like {
            return Err(ApiError(ScimError::new(
                415,
                None,
                format!("unsupported Content-Type '{ct}'; send application/scim+json or application/json"),
            )));
        }
    }
    let (bytes, charge) = read_bytes(state, headers, body, limit).await?;
    if bytes.is_empty() {
        return Err(ScimError::invalid_syntax("the request body is empty; a JSON object was expected").into());
    }
    Ok((bytes, charge))
}

/// The media type of the body (lower case, without parameters), if given.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// Reads a body of at most `limit` bytes, whatever its type, counted
/// against the budget; it may be empty.
pub async fn read_bytes(state: &AppState, headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<(Bytes, Charge)> {
    let too_large = || ScimError::payload_too_large(format!("the request body exceeds the maximum of {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // A slow client gets a bounded time to send its body.
    let wait = state.settings.body_timeout;
    let deadline = Instant::now() + wait;
    let expected = match declared {
        Some(n) if n > limit as u64 => {
            discard(body, deadline, limit).await;
            return Err(too_large().into());
        }
        Some(n) => usize::try_from(n).unwrap_or(limit),
        None => limit,
    };
    let mut charge = Charge::default();
    // Queueing may take half the body's time, the rest is for sending it.
    let queue = queue_deadline(state);
    if let Err(busy) = state.body_budget.take_bytes(&mut charge, expected, queue).await {
        discard(body, deadline, limit).await;
        return Err(busy);
    }
    let bytes: Bytes = tokio::time::timeout_at(deadline.into(), axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| {
            ScimError::new(
                408,
                None,
                format!("the request body did not arrive within {} seconds", wait.as_secs()),
            )
        })?
        .map_err(|_| too_large())?;
    Ok((bytes, charge))
}

/// Until when a request may wait for room in the budget: queueing may take
/// half the body's time, the rest is for sending it.
pub fn queue_deadline(state: &AppState) -> Instant {
    Instant::now() + BUDGET_WAIT.min(state.settings.body_timeout / 2)
}

/// Reads up to `max` bytes of a body refused before it was read, until
/// `deadline`, keeping nothing: a client still sending gets the answer
/// rather than a connection reset in the middle of its body.
async fn discard(mut body: Body, deadline: Instant, max: usize) {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while seen <= max
        && let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline.into(), body.frame()).await
    {
        seen += frame.data_ref().map_or(0, |d| d.len());
    }
}

/// Parses a body read by `read` after checking its shape, with the tree
/// counted against the budget; `keys` checks the keys of the top-level
/// object (a resource's attributes) before anything is built.
pub async fn parse(
    state: &AppState,
    bytes: Bytes,
    mut charge: Charge,
    keys: Option<&KeyCheck<'_>>,
) -> ApiResult<(Value, Charge)> {
    let shape = scan(&bytes, &Limits::default(), keys)?;
    state
        .body_budget
        .take_tree(&mut charge, shape.tree, queue_deadline(state))
        .await?;
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::from(ScimError::invalid_syntax(format!(
            "the request body is not valid JSON: {e}"
        )))
    })?;
    drop(bytes);
    charge.release_bytes();
    Ok((value, charge))
}

/// Reads and parses a JSON body of at most `limit` bytes.
pub async fn read_json(state: &AppState, headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<(Value, Charge)> {
    let (bytes, charge) = read(state, headers, body, limit).await?;
    parse(state, bytes, charge, None).await
}

/// Checks a key of a body's top-level object (`scan`).
pub type KeyCheck<'a> = dyn Fn(&str) -> Result<(), ScimError> + Sync + 'a;

/// Limits on the shape of a JSON body.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Arrays and objects inside each other.
    pub max_depth: usize,
    /// Elements of one array, members of one object.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_elements: 100_000,
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Values (scalars, arrays, objects).
    pub nodes: usize,
    /// The estimated bytes of the `Value` tree parsing would build.
    pub tree: usize,
}

/// A container being scanned.
struct Frame {
    object: bool,
    elements: usize,
    /// In an object: the next string is a key.
    expect_key: bool,
}

/// Sizes of what a `serde_json::Value` tree allocates.
struct Sizes {
    value: usize,
    /// An object member: its hash, key and value.
    member: usize,
}

impl Sizes {
    fn get() -> Self {
        let value = std::mem::size_of::<Value>();
        Sizes {
            value,
            member: value + std::mem::size_of::<String>() + std::mem::size_of::<usize>(),
        }
    }

    /// A heap block of `n` bytes as the allocator hands it out (size
    /// classes an eighth apart, at least 16 bytes).
    fn block(n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (n + n / 8).max(16).next_multiple_of(8)
    }

    /// A `Vec` of `n` elements of `size` bytes grown one push at a time:
    /// capacity 4, then doubling; the last growth briefly holds both the
    /// old and the new buffer.
    fn vec(n: usize, size: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let cap = n.next_power_of_two().max(4);
        Self::block(cap.saturating_mul(size)) + Self::block((cap / 2).saturating_mul(size))
    }

    /// An object of `n` members (an index map: a vector of members and a
    /// hash table of indices).
    fn object(&self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let buckets = (n.saturating_mul(8) / 7 + 1).next_power_of_two().max(4);
        Self::vec(n, self.member) + Self::block(buckets.saturating_mul(std::mem::size_of::<usize>() + 1) + 16)
    }
}

fn too_many(detail: String) -> ScimError {
    ScimError::too_many(detail)
}

/// Scans a JSON text without building anything: checks `limits` and the
/// top-level keys, and estimates the tree. Linear in the length; malformed
/// JSON is left for the parser to report (the estimate still bounds what
/// it would build before failing).
pub fn scan(bytes: &[u8], limits: &Limits, keys: Option<&KeyCheck<'_>>) -> Result<Shape, ScimError> {
    let sizes = Sizes::get();
    let mut stack: Vec<Frame> = Vec::new();
    let mut nodes = 0usize;
    let mut tree = sizes.value;
    let mut i = 0usize;
    // Counts a value in the current container.
    let element = |stack: &mut Vec<Frame>, nodes: &mut usize| -> Result<(), ScimError> {
        *nodes += 1;
        if let Some(f) = stack.last_mut()
            && !f.object
        {
            f.elements += 1;
            if f.elements > limits.max_elements {
                return Err(too_many(format!(
                    "an array in the request body has more than {} elements",
                    limits.max_elements
                )));
            }
        }
        Ok(())
    };
    while let Some(&b) = bytes.get(i) {
        match b {
            b'{' | b'[' => {
                element(&mut stack, &mut nodes)?;
                if stack.len() >= limits.max_depth {
                    // No SCIM body nests this deep: malformed, not too big.
                    return Err(ScimError::invalid_syntax(format!(
                        "the request body nests arrays and objects more than {} levels deep",
                        limits.max_depth
                    )));
                }
                stack.push(Frame {
                    object: b == b'{',
                    elements: 0,
                    expect_key: b == b'{',
                });
                i += 1;
            }
            b'}' | b']' => {
                if let Some(f) = stack.pop() {
                    tree = tree.saturating_add(if f.object {
                        sizes.object(f.elements)
                    } else {
                        Sizes::vec(f.elements, sizes.value)
                    });
                }
                i += 1;
            }
            b':' => {
                if let Some(f) = stack.last_mut() {
                    f.expect_key = false;
                }
                i += 1;
            }
            b',' => {
                if let Some(f) = stack.last_mut() {
                    f.expect_key = f.object;
                }
                i += 1;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => {
                let start = i + 1;
                let mut j = start;
                let mut escaped = false;
                while let Some(&c) = bytes.get(j) {
                    match c {
                        b'\\' => {
                            escaped = true;
                            j += 2;
                        }
                        b'"' => break,
                        _ => j += 1,
                    }
                }
                let len = j.min(bytes.len()) - start;
                // Escapes only shorten a string: the raw length bounds it.
                tree = tree.saturating_add(Sizes::block(len));
                let key = match stack.last_mut() {
                    Some(f) if f.object && f.expect_key => {
                        f.elements += 1;
                        f.expect_key = false;
                        if f.elements > limits.max_elements {
                            return Err(too_many(format!(
                                "an object in the request body has more than {} members",
                                limits.max_elements
                            )));
                        }
                        true
                    }
                    _ => false,
                };
                if key {
                    if stack.len() == 1
                        && !escaped
                        && let (Some(check), Some(name)) = (keys, bytes.get(start..j))
                        && let Ok(name) = std::str::from_utf8(name)
                    {
                        check(name)?;
                    }
                } else {
                    element(&mut stack, &mut nodes)?;
                }
                i = j + 1;
            }
            _ => {
                // A number, true, false, null (or junk for the parser).
                element(&mut stack, &mut nodes)?;
                while let Some(&c) = bytes.get(i) {
                    if matches!(
                        c,
                        b'{' | b'}' | b'[' | b']' | b':' | b',' | b'"' | b' ' | b'\t' | b'\n' | b'\r'
                    ) {
                        break;
                    }
                    i += 1;
                }
            }
        }
    }
    // Containers left open (truncated text) are built up to the error.
    for f in stack {
        tree = tree.saturating_add(if f.object {
            sizes.object(f.elements)
        } else {
            Sizes::vec(f.elements, sizes.value)
        });
    }
    Ok(Shape { nodes, tree })
}
