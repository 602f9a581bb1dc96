//! The provisioning log: one record per object per cycle, in the shape of
//! Entra's `provisioningObjectSummary` (entra-provisioning.md §3.7), and the
//! error codes Entra uses, with the reason and recommended action an
//! administrator reads.

use serde_json::{Map, Value, json};

/// An action on an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Disable,
    Delete,
    StagedDelete,
    /// Nothing to change, or nothing done (the object was skipped).
    Other,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Disable => "disable",
            Action::Delete => "delete",
            Action::StagedDelete => "stagedDelete",
            Action::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    Skipped,
    Warning,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Skipped => "skipped",
            Status::Warning => "warning",
        }
    }
}

/// The step types of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepType {
    Import,
    Scoping,
    Matching,
    Processing,
    ReferenceResolution,
    Export,
}

impl StepType {
    pub fn as_str(self) -> &'static str {
        match self {
            StepType::Import => "import",
            StepType::Scoping => "scoping",
            StepType::Matching => "matching",
            StepType::Processing => "processing",
            StepType::ReferenceResolution => "referenceResolution",
            StepType::Export => "export",
        }
    }
}

/// An error as Entra names it, with what it means and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub reason: String,
    pub details: String,
    pub recommended_action: &'static str,
}

impl ErrorInfo {
    pub fn new(code: &'static str, details: impl Into<String>) -> Self {
        let (reason, action) = describe(code);
        ErrorInfo {
            code,
            reason: reason.to_string(),
            details: details.into(),
            recommended_action: action,
        }
    }

    pub fn to_json(&self) -> Value {
        let category = match self.code {
            "InternalError" => "nonServiceFailure",
            _ => "failure",
        };
        json!({
            "errorCode": self.code,
            "reason": self.reason,
            "additionalDetails": self.details,
            "errorCategory": category,
            "recommendedAction": self.recommended_action,
        })
    }
}

/// Entra's error codes: reason and recommended action.
pub fn describe(code: &str) -> (&'static str, &'static str) {
    match code {
        "EntryConflict" => (
            "The target already holds an object with a value that must be unique.",
            "Find the conflicting object in the target; link it by making the matching attribute agree, or change the value in the source.",
        ),
        "DuplicateTargetEntries" => (
            "The matching query found more than one object in the target.",
            "Make the matching attribute unique in the target, or choose another matching attribute.",
        ),
        "DuplicateSourceEntries" => (
            "Several source objects have the same matching value.",
            "Give each source object a unique value for the matching attribute.",
        ),
        "InvalidAnchor" => (
            "The target object this source object was linked to no longer exists.",
            "Restart the job (sync restart) so that the object is matched again, or recreate it in the target.",
        ),
        "MandatoryFieldsMissing" | "ImportSkipped" => (
            "The source object has no value for any matching attribute.",
            "Fill in the matching attribute in the source, or map another matching attribute.",
        ),
        "SchemaAttributeNotFound" => (
            "A mapped attribute is not in the target's schema.",
            "Add the attribute to the application's /Schemas, or remove its mapping.",
        ),
        "SchemaPropertyCanOnlyAcceptValue" => (
            "The target refused a value.",
            "Check the mapping's expression and the target's schema for this attribute.",
        ),
        "Unauthorized" => (
            "The target refused the Secret Token.",
            "Generate a new Secret Token in the application and update the job's target token.",
        ),
        "InsufficientRights" => (
            "The target says the token may not do this.",
            "Give the token the rights provisioning needs in the application.",
        ),
        "MethodNotAllowed" | "NotImplemented" => (
            "The target does not support this request.",
            "Turn off the target object action that needs it, or ask the application's vendor.",
        ),
        "TooManyRequests" => (
            "The target is rate-limiting the job.",
            "Nothing: the request is retried. Lower the job's concurrency if it persists.",
        ),
        "InternalServerError" => (
            "The target failed with a server error.",
            "Nothing: the object is retried in the next cycle. Check the application if it persists.",
        ),
        "Timeout" => (
            "The target did not answer in time.",
            "Nothing: the object is retried in the next cycle. Check the application's availability.",
        ),
        "WebExceptionProtocolError" => (
            "The request to the target failed.",
            "Check that the Tenant URL is reachable from this server; the object is retried in the next cycle.",
        ),
        "UnprocessableEntity" => (
            "The target could not process the request.",
            "Check the values the mappings send against what the application accepts.",
        ),
        "SystemForCrossDomainIdentityManagementServiceIncompatible" => (
            "The target's answer is not what a SCIM 2.0 service provider answers.",
            "Check that the Tenant URL is the application's SCIM base URL; run `scimitar validate` against it.",
        ),
        "SystemForCrossDomainIdentityManagementMultipleEntriesInResponse" => (
            "The target returned several objects where one was expected.",
            "Make the matching attribute unique in the target.",
        ),
        "ExpressionError" => (
            "A mapping's expression failed for this object.",
            "Check the expression with `scimitar expression eval` against this object.",
        ),
        "SelectUniqueValueExhausted" => (
            "Every value SelectUniqueValue proposed is taken in the target.",
            "Add another rule to the SelectUniqueValue expression.",
        ),
        _ => (
            "The engine could not process the object.",
            "See the details; the object is retried in the next cycle.",
        ),
    }
}

/// The error code of an HTTP status from the target.
pub fn code_of_status(status: u16, scim_type: Option<&str>, on_resource: bool) -> &'static str {
    match status {
        400 if scim_type == Some("invalidValue") || scim_type == Some("invalidSyntax") => {
            "SchemaPropertyCanOnlyAcceptValue"
        }
        400 => "WebExceptionProtocolError",
        401 => "Unauthorized",
        403 => "InsufficientRights",
        404 if on_resource => "InvalidAnchor",
        404 => "SystemForCrossDomainIdentityManagementServiceIncompatible",
        405 => "MethodNotAllowed",
        409 => "EntryConflict",
        422 => "UnprocessableEntity",
        429 => "TooManyRequests",
        501 => "NotImplemented",
        500..=599 => "InternalServerError",
        _ => "WebExceptionProtocolError",
    }
}

/// One step of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepType,
    pub name: String,
    pub status: Status,
    pub description: String,
    pub details: Map<String, Value>,
}

impl Step {
    pub fn new(kind: StepType, name: &str, status: Status, description: impl Into<String>) -> Self {
        Step {
            kind,
            name: name.to_string(),
            status,
            description: description.into(),
            details: Map::new(),
        }
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "provisioningStepType": self.kind.as_str(),
            "status": self.status.as_str(),
            "description": self.description,
            "details": self.details,
        })
    }
}
