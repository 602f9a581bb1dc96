//! Signed webhooks: the host application is told of each event of a
//! tenant by an HTTP POST to the endpoints the tenant's administrator
//! registered.
//!
//! - [`sign`]: Standard Webhooks signatures and secrets, and `verify` for
//!   receivers (the test receiver uses it);
//! - [`policy`]: where webhooks may go (no SSRF);
//! - [`retry`]: the retry schedule, pure;
//! - [`send`]: one delivery attempt;
//! - [`worker`]: delivery per endpoint, in order, under a lease, with its
//!   state and log in the store (`scimitar_store::webhooks`).
//!
//! This crate knows no SCIM: an event is an id, a sequence number, a type
//! and a JSON body.

pub mod policy;
pub mod retry;
pub mod send;
pub mod sign;
pub mod worker;
