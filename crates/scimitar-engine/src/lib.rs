//! Scimitar's provisioning engine: it does the job of Microsoft Entra ID's
//! provisioning service. A job reads a directory (`source`: LDAP, HR files,
//! any SCIM server), decides which users and groups are in scope, computes
//! each target attribute through mappings in Entra's expression language,
//! matches objects that already exist in the target, and creates, updates,
//! disables and deletes them over SCIM (`client`, in Entra's dialects),
//! resolving managers and memberships, logging every object, and then
//! sending only what changed in incremental cycles (`cycle`).
//!
//! Pure parts — job files, mappings, scoping filters, the shape of every
//! request, diffs — are separate from I/O (sources, the SCIM client, the
//! state store), so that they are table-tested.

pub mod client;
pub mod cycle;
pub mod dialect;
pub mod diff;
pub mod egress;
pub mod job;
pub mod log;
pub mod mapping;
pub mod model;
pub mod notify;
pub mod quarantine;
pub mod schedule;
pub mod scoping;
pub mod source;
pub mod template;
