//! What the `scimitar` binary needs from the console: creating accounts
//! from the command line.

use std::io::{BufRead, IsTerminal};

use scimitar_store::{ConsoleAdmin, Store, StoreError};

/// Reads a password from the terminal without echo (asking twice), or
/// when stdin is not a terminal, from its first line. Never from an
/// argument: those end up in shell history and process listings.
pub fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Repeat the password: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

/// Creates a console account. `admin` and `viewer` belong to `tenant`;
/// an `operator` has none.
pub async fn create_account(
    store: &dyn Store,
    tenant: Option<&str>,
    email: &str,
    role: &str,
    password: &str,
) -> Result<ConsoleAdmin, String> {
    let email = email.trim();
    if !email.contains('@') {
        return Err(format!("'{email}' is not an email address"));
    }
    if password.chars().count() < crate::MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must have at least {} characters",
            crate::MIN_PASSWORD_LEN
        ));
    }
    let tenant_id = match (role, tenant) {
        ("operator", None) => None,
        ("operator", Some(_)) => return Err("an operator works across tenants: leave out --tenant".into()),
        ("admin" | "viewer", Some(name)) => Some(
            store
                .tenant(name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no tenant named '{name}'"))?
                .id,
        ),
        ("admin" | "viewer", None) => return Err(format!("a {role} belongs to a tenant: give --tenant")),
        _ => return Err(format!("unknown role '{role}' (admin, viewer or operator)")),
    };
    let hash = crate::hash_password(password)?;
    store
        .create_admin(tenant_id, email, role, &hash)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => format!("an account with the email '{email}' already exists"),
            e => e.to_string(),
        })
}
