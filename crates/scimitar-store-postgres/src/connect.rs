//! Why a connection to PostgreSQL failed, said with the server's address,
//! the database and what to do: tokio-postgres alone says `db error` or
//! `error connecting to server`.

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

/// Where a connection went: from the parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, or the socket directory for a Unix socket.
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
}

impl Target {
    pub fn of(config: &tokio_postgres::Config) -> Target {
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or_default().to_string();
        let database = config.get_dbname().map_or_else(|| user.clone(), str::to_string);
        Target {
            host,
            port,
            database,
            user,
        }
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `-h HOST [-p PORT]` for PostgreSQL's client programs.
    fn client_args(&self) -> String {
        if self.port == 5432 {
            format!("-h {}", self.host)
        } else {
            format!("-h {} -p {}", self.host, self.port)
        }
    }
}

/// What went wrong, as far as it decides the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// SQLSTATE 3D000.
    MissingDatabase,
    /// SQLSTATE 28000 with "role … does not exist".
    MissingRole,
    /// SQLSTATE 28P01.
    WrongPassword,
    /// Another SQLSTATE 28000 (pg_hba.conf): the server's message.
    Rejected(String),
    /// Nothing listens at the address.
    Refused,
    /// Any other error: its text.
    Other(String),
}

impl Failure {
    pub fn of(e: &tokio_postgres::Error) -> Failure {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            return if *code == SqlState::INVALID_CATALOG_NAME {
                Failure::MissingDatabase
            } else if *code == SqlState::INVALID_PASSWORD {
                Failure::WrongPassword
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                if db.message().starts_with("role ") && db.message().ends_with("does not exist") {
                    Failure::MissingRole
                } else {
                    Failure::Rejected(db.message().to_string())
                }
            } else {
                Failure::Other(format!("{} (SQLSTATE {})", db.message(), code.code()))
            };
        }
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    Failure::Refused
                } else {
                    Failure::Other(io.to_string())
                };
            }
            source = s.source();
        }
        Failure::Other(e.to_string())
    }
}

/// The message of a failed connection: which failure, where, and what to do.
pub fn message(t: &Target, f: &Failure) -> String {
    let (addr, db, user) = (t.address(), &t.database, &t.user);
    match f {
        Failure::MissingDatabase => format!(
            "database \"{db}\" does not exist on {addr} — create it with: createdb {} -U postgres{} {db}",
            t.client_args(),
            if user.is_empty() || user == "postgres" {
                String::new()
            } else {
                format!(" -O {user}")
            }
        ),
        Failure::MissingRole => format!(
            "role \"{user}\" does not exist on {addr} (database \"{db}\") — create it with: createuser {} -U postgres --pwprompt {user}",
            t.client_args()
        ),
        Failure::WrongPassword => format!(
            "password authentication failed for role \"{user}\" on {addr} (database \"{db}\") — check the password in the database URL"
        ),
        Failure::Rejected(m) => {
            format!("{addr} refused role \"{user}\" for database \"{db}\": {m} — check the server's pg_hba.conf")
        }
        Failure::Refused => format!(
            "cannot connect to PostgreSQL on {addr} (database \"{db}\"): connection refused — is the server running and listening on that address and port?"
        ),
        Failure::Other(m) => format!("cannot connect to PostgreSQL on {addr} (database \"{db}\"): {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_which_failure_where_and_what_to_do() {
        let target = |host: &str, port: u16, database: &str, user: &str| Target {
            host: host.into(),
            port,
            database: database.into(),
            user: user.into(),
        };
        let local = target("127.0.0.1", 5432, "nope", "postgres");
        let cases: &[(&Target, Failure, &str)] = &[
            (
                &local,
                Failure::MissingDatabase,
                "database \"nope\" does not exist on 127.0.0.1:5432 — create it with: createdb -h 127.0.0.1 -U postgres nope",
            ),
            (
                &target("db.internal", 5433, "scim", "app"),
                Failure::MissingDatabase,
                "database \"scim\" does not exist on db.internal:5433 — create it with: createdb -h db.internal -p 5433 -U postgres -O app scim",
            ),
            (
                &target("127.0.0.1", 5432, "scim", "ghost"),
                Failure::MissingRole,
                "role \"ghost\" does not exist on 127.0.0.1:5432 (database \"scim\") — create it with: createuser -h 127.0.0.1 -U postgres --pwprompt ghost",
            ),
            (
                &target("127.0.0.1", 5432, "scim", "app"),
                Failure::WrongPassword,
                "password authentication failed for role \"app\" on 127.0.0.1:5432 (database \"scim\") — check the password in the database URL",
            ),
            (
                &target("127.0.0.1", 5432, "scim", "app"),
                Failure::Rejected("no pg_hba.conf entry for host \"10.0.0.9\"".into()),
                "127.0.0.1:5432 refused role \"app\" for database \"scim\": no pg_hba.conf entry for host \"10.0.0.9\" — check the server's pg_hba.conf",
            ),
            (
                &target("127.0.0.1", 1, "scim", "app"),
                Failure::Refused,
                "cannot connect to PostgreSQL on 127.0.0.1:1 (database \"scim\"): connection refused — is the server running and listening on that address and port?",
            ),
            (
                &local,
                Failure::Other("timed out".into()),
                "cannot connect to PostgreSQL on 127.0.0.1:5432 (database \"nope\"): timed out",
            ),
        ];
        for (t, f, want) in cases {
            assert_eq!(message(t, f), *want, "{f:?}");
        }
    }

    #[test]
    fn the_target_comes_from_the_url() {
        let cases = [
            ("postgres://app@db:5433/scim", ("db", 5433, "scim", "app")),
            (
                "postgresql://postgres@127.0.0.1/nope",
                ("127.0.0.1", 5432, "nope", "postgres"),
            ),
            // The database defaults to the user's name, as in libpq.
            ("postgres://app@db", ("db", 5432, "app", "app")),
        ];
        for (url, (host, port, database, user)) in cases {
            let config: tokio_postgres::Config = url.parse().unwrap();
            let t = Target::of(&config);
            assert_eq!(
                (t.host.as_str(), t.port, t.database.as_str(), t.user.as_str()),
                (host, port, database, user),
                "{url}"
            );
        }
    }
}
