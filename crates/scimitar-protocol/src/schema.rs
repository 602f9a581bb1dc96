//! Schema and resource-type metadata (RFC 7643 §2, §4, §6, §7).
//!
//! Attribute metadata drives every other part of the protocol crate:
//! validation, case sensitivity in filters, mutability in PUT and PATCH,
//! and the `returned` rules of projection. Schemas are plain data so that
//! tenants can register their own extensions at run time.

use serde::{Deserialize, Serialize};

pub mod urn {
    pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    pub(crate) const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
    pub(crate) const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
    pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    pub(crate) const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
    pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
    pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
    pub(crate) const SERVICE_PROVIDER_CONFIG: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
    pub(crate) const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
    pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
    /// Entra's legacy create body misspells the enterprise URN (no colon
    /// before `User`); we read it as the real one.
    pub(crate) const ENTERPRISE_USER_MISSPELT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0User";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    #[default]
    None,
    Server,
    Global,
}

/// One attribute definition, serialised exactly as `/Schemas` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttrType,
    pub multi_valued: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub uniqueness: Uniqueness,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
    pub fn is_complex(&self) -> bool {
        self.kind == AttrType::Complex
    }
    /// Whether string comparisons on this attribute are case-insensitive.
    pub fn case_insensitive(&self) -> bool {
        matches!(self.kind, AttrType::String) && !self.case_exact
    }
}

/// A schema (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema extension attached to a resource type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaExtension {
    pub schema: String,
    pub required: bool,
}

/// A resource type (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub description: String,
    pub schema: Schema,
    pub extensions: Vec<(Schema, bool)>,
}

impl ResourceType {
    pub fn extension(&self, urn: &str) -> Option<&Schema> {
        let urn = canonical_urn_alias(urn);
        self.extensions
            .iter()
            .map(|(s, _)| s)
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }
    pub fn is_user(&self) -> bool {
        self.name == "User"
    }
    pub fn is_group(&self) -> bool {
        self.name == "Group"
    }
}

/// Maps known misspellings of schema URNs to the real one.
pub(crate) fn canonical_urn_alias(urn: &str) -> &str {
    if urn.eq_ignore_ascii_case(urn::ENTERPRISE_USER_MISSPELT) {
        urn::ENTERPRISE_USER
    } else {
        urn
    }
}

// ---------------------------------------------------------------------------
// Built-in schemas. Kept terse: `a()` builds an attribute with RFC defaults
// (single-valued string, readWrite, returned default, caseExact false).

fn a(name: &str, kind: AttrType) -> Attribute {
    Attribute {
        name: name.to_string(),
        kind,
        multi_valued: false,
        description: String::new(),
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: Vec::new(),
        reference_types: Vec::new(),
        sub_attributes: Vec::new(),
    }
}

fn s(name: &str) -> Attribute {
    a(name, AttrType::String)
}

/// A case-exact, single-valued string attribute named `name`.
pub(crate) fn exact_string(name: &str) -> Attribute {
    s(name).exact()
}

impl Attribute {
    fn desc(mut self, d: &str) -> Self {
        self.description = d.to_string();
        self
    }
    fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    fn canonical(mut self, v: &[&str]) -> Self {
        self.canonical_values = v.iter().map(|s| s.to_string()).collect();
        self
    }
    fn refs(mut self, v: &[&str]) -> Self {
        self.reference_types = v.iter().map(|s| s.to_string()).collect();
        self
    }
    fn subs(mut self, v: Vec<Attribute>) -> Self {
        self.sub_attributes = v;
        self
    }
}

/// The standard sub-attributes of a multi-valued attribute (RFC 7643 §2.4).
fn multi_valued_complex(name: &str, desc: &str, value: Attribute, types: &[&str]) -> Attribute {
    let mut kind = s("type").desc("A label indicating the attribute's function.");
    if !types.is_empty() {
        kind = kind.canonical(types);
    }
    let subs = vec![
        value,
        s("display").desc("A human-readable name, primarily used for display purposes."),
        kind,
        a("primary", AttrType::Boolean).desc("Indicates the 'primary' or preferred value."),
    ];
    a(name, AttrType::Complex).multi().desc(desc).subs(subs)
}

pub(crate) fn user_schema() -> Schema {
    use AttrType::*;
    use Mutability::*;
    let name = a("name", Complex)
        .desc("The components of the user's real name.")
        .subs(vec![
            s("formatted").desc("The full name, formatted for display."),
            s("familyName").desc("The family name of the User."),
            s("givenName").desc("The given name of the User."),
            s("middleName").desc("The middle name(s) of the User."),
            s("honorificPrefix").desc("The honorific prefix(es) of the User, e.g. 'Ms.'."),
            s("honorificSuffix").desc("The honorific suffix(es) of the User, e.g. 'III'."),
        ]);
    let addresses = a("addresses", Complex)
        .multi()
        .desc("A physical mailing address for this User.")
        .subs(vec![
            s("formatted").desc("The full mailing address, formatted for display."),
            s("streetAddress").desc("The full street address component."),
            s("locality").desc("The city or locality component."),
            s("region").desc("The state or region component."),
            s("postalCode").desc("The zip code or postal code component."),
            s("country").desc("The country name component (ISO 3166-1 alpha-2)."),
            s("type")
                .desc("A label indicating the attribute's function.")
                .canonical(&["work", "home", "other"]),
            a("primary", Boolean).desc("Indicates the 'primary' or preferred address."),
        ]);
    let groups = a("groups", Complex)
        .multi()
        .mutability(ReadOnly)
        .desc("A list of groups to which the user belongs, either direct or indirect.")
        .subs(vec![
            s("value")
                .desc("The identifier of the User's group.")
                .mutability(ReadOnly),
            a("$ref", Reference)
                .refs(&["User", "Group"])
                .mutability(ReadOnly)
                .desc("The URI of the corresponding Group resource."),
            s("display")
                .mutability(ReadOnly)
                .desc("A human-readable name of the group."),
            s("type")
                .mutability(ReadOnly)
                .canonical(&["direct", "indirect"])
                .desc("How the membership was derived."),
        ]);
    Schema {
        id: urn::CORE_USER.into(),
        name: "User".into(),
        description: "User Account".into(),
        attributes: vec![
            s("userName")
                .required()
                .unique(Uniqueness::Server)
                .desc("Unique identifier for the User, typically used to sign in. Compared case-insensitively."),
            name,
            s("displayName").desc("The name of the User, suitable for display to end-users."),
            s("nickName").desc("The casual way to address the user."),
            a("profileUrl", Reference)
                .refs(&["external"])
                .desc("A fully qualified URL pointing to the User's online profile."),
            s("title").desc("The user's title, such as \"Vice President\"."),
            s("userType").desc("Used to identify the relationship between the organization and the user."),
            s("preferredLanguage").desc("The User's preferred written or spoken language (RFC 7231 Accept-Language)."),
            s("locale").desc("The User's default location for localization (e.g. en-US)."),
            s("timezone").desc("The User's time zone in IANA Time Zone database format."),
            a("active", Boolean).desc("The User's administrative status."),
            s("password")
                .mutability(WriteOnly)
                .returned(Returned::Never)
                .desc("The User's cleartext password; never returned."),
            multi_valued_complex(
                "emails",
                "Email addresses for the user.",
                s("value").desc("Email address for the User."),
                &["work", "home", "other"],
            ),
            multi_valued_complex(
                "phoneNumbers",
                "Phone numbers for the User.",
                s("value").desc("Phone number of the User."),
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            multi_valued_complex(
                "ims",
                "Instant messaging addresses for the User.",
                s("value").desc("Instant messaging address for the User."),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            multi_valued_complex(
                "photos",
                "URLs of photos of the User.",
                a("value", Reference)
                    .refs(&["external"])
                    .desc("URL of a photo of the User."),
                &["photo", "thumbnail"],
            ),
            addresses,
            groups,
            multi_valued_complex(
                "entitlements",
                "A list of entitlements for the User.",
                s("value").desc("The value of an entitlement."),
                &[],
            ),
            multi_valued_complex(
                "roles",
                "A list of roles for the User.",
                s("value").desc("The value of a role."),
                &[],
            ),
            multi_valued_complex(
                "x509Certificates",
                "A list of certificates issued to the User.",
                a("value", Binary).desc("The value of an X.509 certificate."),
                &[],
            ),
        ],
    }
}

pub(crate) fn enterprise_user_schema() -> Schema {
    use AttrType::*;
    Schema {
        id: urn::ENTERPRISE_USER.into(),
        name: "EnterpriseUser".into(),
        description: "Enterprise User".into(),
        attributes: vec![
            s("employeeNumber").desc("Numeric or alphanumeric identifier assigned to a person by the organization."),
            s("costCenter").desc("Identifies the name of a cost center."),
            s("organization").desc("Identifies the name of an organization."),
            s("division").desc("Identifies the name of a division."),
            s("department").desc("Identifies the name of a department."),
            a("manager", Complex).desc("The User's manager.").subs(vec![
                s("value").desc("The id of the SCIM resource representing the User's manager."),
                a("$ref", Reference)
                    .refs(&["User"])
                    .desc("The URI of the SCIM resource representing the User's manager."),
                s("displayName")
                    .mutability(Mutability::ReadOnly)
                    .desc("The displayName of the User's manager."),
            ]),
        ],
    }
}

pub(crate) fn group_schema() -> Schema {
    use AttrType::*;
    Schema {
        id: urn::CORE_GROUP.into(),
        name: "Group".into(),
        description: "Group".into(),
        attributes: vec![
            s("displayName")
                .required()
                .unique(Uniqueness::Server)
                .desc("A human-readable name for the Group. Unique per tenant, compared case-insensitively."),
            a("members", Complex)
                .multi()
                .desc("A list of members of the Group.")
                .subs(vec![
                    s("value")
                        .mutability(Mutability::Immutable)
                        .desc("Identifier of the member of this Group."),
                    a("$ref", Reference)
                        .refs(&["User", "Group"])
                        .mutability(Mutability::Immutable)
                        .desc("The URI corresponding to a SCIM resource that is a member of this Group."),
                    s("display").desc("A human-readable name of the member; the member's own name when not given."),
                    s("type")
                        .mutability(Mutability::Immutable)
                        .canonical(&["User", "Group"])
                        .desc("The type of the member."),
                ]),
        ],
    }
}

/// The attributes common to every resource (RFC 7643 §3.1), used when
/// resolving paths such as `id`, `externalId` or `meta.lastModified`.
pub(crate) fn common_attributes() -> &'static [Attribute] {
    use std::sync::OnceLock;
    static COMMON: OnceLock<Vec<Attribute>> = OnceLock::new();
    COMMON.get_or_init(|| {
        use AttrType::*;
        use Mutability::*;
        vec![
            s("id")
                .exact()
                .mutability(ReadOnly)
                .returned(Returned::Always)
                .unique(Uniqueness::Server)
                .desc("Unique identifier for the resource, assigned by the service provider."),
            s("externalId")
                .exact()
                .desc("Identifier of the resource as defined by the provisioning client."),
            a("meta", Complex)
                .mutability(ReadOnly)
                .desc("Resource metadata.")
                .subs(vec![
                    s("resourceType").exact().mutability(ReadOnly),
                    a("created", DateTime).mutability(ReadOnly),
                    a("lastModified", DateTime).mutability(ReadOnly),
                    a("location", Reference).mutability(ReadOnly).refs(&["uri"]),
                    s("version").exact().mutability(ReadOnly),
                ]),
        ]
    })
}

/// The built-in resource types: User (with the enterprise extension) and Group.
pub fn builtin_resource_types() -> Vec<ResourceType> {
    vec![
        ResourceType {
            id: "User".into(),
            name: "User".into(),
            endpoint: "/Users".into(),
            description: "User Account".into(),
            schema: user_schema(),
            extensions: vec![(enterprise_user_schema(), false)],
        },
        ResourceType {
            id: "Group".into(),
            name: "Group".into(),
            endpoint: "/Groups".into(),
            description: "Group".into(),
            schema: group_schema(),
            extensions: vec![],
        },
    ]
}

/// Where an attribute path points, after resolution against a resource type.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The URN of the schema the attribute belongs to; `None` for common
    /// attributes (`id`, `externalId`, `meta`).
    pub schema: Option<&'a str>,
    /// Whether the attribute lives in an extension object in the resource.
    pub extension: bool,
    pub attr: &'a Attribute,
    pub sub: Option<&'a Attribute>,
}

impl<'a> Resolved<'a> {
    /// The attribute that the path finally designates.
    pub fn leaf(&self) -> &'a Attribute {
        self.sub.unwrap_or(self.attr)
    }
}

impl ResourceType {
    /// Resolves `[urn:]name[.sub]` against this resource type. Names are
    /// case-insensitive; the returned attributes carry canonical names.
    pub fn resolve<'a>(&'a self, urn: Option<&str>, name: &str, sub: Option<&str>) -> Option<Resolved<'a>> {
        let (schema, extension, attr) = match urn {
            Some(u) => {
                let u = canonical_urn_alias(u);
                if self.schema.id.eq_ignore_ascii_case(u) {
                    match self.schema.attribute(name) {
                        Some(attr) => (Some(self.schema.id.as_str()), false, attr),
                        None => {
                            let attr = common_attributes().iter().find(|a| a.name.eq_ignore_ascii_case(name))?;
                            (None, false, attr)
                        }
                    }
                } else {
                    let ext = self.extension(u)?;
                    (Some(ext.id.as_str()), true, ext.attribute(name)?)
                }
            }
            None => {
                if let Some(attr) = common_attributes().iter().find(|a| a.name.eq_ignore_ascii_case(name)) {
                    (None, false, attr)
                } else if let Some(attr) = self.schema.attribute(name) {
                    (Some(self.schema.id.as_str()), false, attr)
                } else {
                    // Unqualified extension attributes are accepted when unambiguous.
                    let (ext, attr) = self
                        .extensions
                        .iter()
                        .find_map(|(s, _)| s.attribute(name).map(|a| (s, a)))?;
                    (Some(ext.id.as_str()), true, attr)
                }
            }
        };
        let sub = match sub {
            Some(sn) => Some(attr.sub(sn)?),
            None => None,
        };
        Some(Resolved {
            schema,
            extension,
            attr,
            sub,
        })
    }

    /// All attributes of the resource: common, core, then each extension's.
    pub(crate) fn all_attributes(&self) -> impl Iterator<Item = (Option<&Schema>, &Attribute)> {
        common_attributes()
            .iter()
            .map(|a| (None, a))
            .chain(self.schema.attributes.iter().map(move |a| (None, a)))
            .chain(
                self.extensions
                    .iter()
                    .flat_map(|(s, _)| s.attributes.iter().map(move |a| (Some(s), a))),
            )
    }
}

/// The JSON representation of a schema for `/Schemas` (RFC 7643 §7).
pub fn schema_to_json(schema: &Schema, base_url: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(schema).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("schemas".into(), serde_json::json!([urn::SCHEMA]));
        obj.insert(
            "meta".into(),
            serde_json::json!({
                "resourceType": "Schema",
                "location": format!("{base_url}/Schemas/{}", schema.id),
            }),
        );
    }
    v
}

/// The JSON representation of a resource type for `/ResourceTypes`.
pub fn resource_type_to_json(rt: &ResourceType, base_url: &str) -> serde_json::Value {
    let exts: Vec<_> = rt
        .extensions
        .iter()
        .map(|(s, required)| serde_json::json!({"schema": s.id, "required": required}))
        .collect();
    serde_json::json!({
        "schemas": [urn::RESOURCE_TYPE],
        "id": rt.id,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema.id,
        "schemaExtensions": exts,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base_url}/ResourceTypes/{}", rt.id),
        }
    })
}

/// Validates a custom schema extension registered by a tenant and returns
/// it in canonical form. Names are restricted so that they can be used as
/// JSON keys and SQL JSON paths safely.
pub fn parse_extension(def: &serde_json::Value) -> Result<Schema, crate::ScimError> {
    use crate::ScimError;
    let mut schema: Schema = serde_json::from_value(def.clone())
        .map_err(|e| ScimError::invalid_value(format!("invalid schema definition: {e}")))?;
    let id_ok = schema.id.to_ascii_lowercase().starts_with("urn:")
        && schema.id.len() <= 200
        && schema
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_'));
    if !id_ok {
        return Err(ScimError::invalid_value(format!(
            "schema id '{}' must be a URN such as urn:ietf:params:scim:schemas:extension:acme:2.0:User",
            schema.id
        )));
    }
    for builtin in [urn::CORE_USER, urn::CORE_GROUP, urn::ENTERPRISE_USER] {
        if schema.id.eq_ignore_ascii_case(builtin) {
            return Err(ScimError::invalid_value(format!(
                "'{}' is a built-in schema",
                schema.id
            )));
        }
    }
    if schema.name.trim().is_empty() {
        schema.name = schema.id.rsplit(':').next().unwrap_or_default().to_string();
    }
    if schema.attributes.is_empty() {
        return Err(ScimError::invalid_value("an extension needs at least one attribute"));
    }
    check_attributes(&schema.attributes, true)?;
    Ok(schema)
}

fn check_attributes(attrs: &[Attribute], top: bool) -> Result<(), crate::ScimError> {
    use crate::ScimError;
    let mut seen: Vec<String> = Vec::new();
    for a in attrs {
        let valid = a.name.len() <= 64
            && a.name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && a.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ScimError::invalid_value(format!(
                "attribute name '{}' must start with a letter and use only letters, digits, '_' and '-'",
                a.name
            )));
        }
        let lower = a.name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(ScimError::invalid_value(format!(
                "attribute '{}' is defined twice",
                a.name
            )));
        }
        seen.push(lower);
        match (a.kind, a.sub_attributes.is_empty()) {
            (AttrType::Complex, true) => {
                return Err(ScimError::invalid_value(format!(
                    "complex attribute '{}' needs subAttributes",
                    a.name
                )));
            }
            (AttrType::Complex, false) if !top => {
                return Err(ScimError::invalid_value(format!(
                    "'{}': complex attributes cannot nest",
                    a.name
                )));
            }
            (AttrType::Complex, false) => check_attributes(&a.sub_attributes, false)?,
            (_, false) => {
                return Err(ScimError::invalid_value(format!(
                    "only complex attributes have subAttributes ('{}')",
                    a.name
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The built-in resource types with a tenant's extensions added.
pub fn resource_types_with(extensions: &[(String, Schema, bool)]) -> Vec<ResourceType> {
    let mut rts = builtin_resource_types();
    for (rt_name, schema, required) in extensions {
        if let Some(rt) = rts.iter_mut().find(|rt| rt.name.eq_ignore_ascii_case(rt_name)) {
            rt.extensions.retain(|(s, _)| !s.id.eq_ignore_ascii_case(&schema.id));
            rt.extensions.push((schema.clone(), *required));
        }
    }
    rts
}

/// The resource types Scimitar stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    /// The kind of a (built-in) resource type.
    pub fn of(rt: &ResourceType) -> Option<Kind> {
        match rt.name.as_str() {
            "User" => Some(Kind::User),
            "Group" => Some(Kind::Group),
            _ => None,
        }
    }
}
