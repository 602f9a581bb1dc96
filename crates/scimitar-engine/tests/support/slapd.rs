//! A throwaway OpenLDAP server for tests: `slapd` in the foreground as the
//! current user, on a free loopback port, in a temporary directory, with an
//! mdb database for `dc=example,dc=org` loaded by `slapadd` before it starts
//! (fast, and it keeps the `modifyTimestamp`s an LDIF gives). Killed by PID
//! on drop, also when the test panics.
//!
//! Include it from a test file with
//! `#[path = "support/slapd.rs"] mod slapd;` (from another crate's tests:
//! `#[path = "../../scimitar-engine/tests/support/slapd.rs"]`). It needs
//! Debian's `slapd` and `ldap-utils`; the engine's build script sets
//! `cfg(has_slapd)` when slapd is installed, and tests that need it carry
//! `#[cfg_attr(not(has_slapd), ignore = "…")]`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BASE: &str = "dc=example,dc=org";
pub const ADMIN: &str = "cn=admin,dc=example,dc=org";
pub const PASSWORD: &str = "secret";

/// The suffix and the two containers every server starts with.
const TREE: &str = "dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups
";

/// Content synchronisation as the server offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// `syncprov` with a session log: deletions are named.
    SessionLog,
    /// `syncprov` without one: the present UUIDs are listed instead.
    NoSessionLog,
    /// No `syncprov`: clients fall back to `modifyTimestamp`.
    Off,
}

pub struct Options {
    pub sync: Sync,
    /// Entries loaded with `slapadd` after the base tree.
    pub ldif: String,
    /// Serve `ldaps://` with this certificate chain and key (PEM).
    pub tls: Option<(String, String)>,
    /// Lines added to the database section (e.g. `limits …`).
    pub database_config: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: Sync::SessionLog,
            ldif: String::new(),
            tls: None,
            database_config: String::new(),
        }
    }
}

pub struct Slapd {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    /// `ldap://127.0.0.1:port` (or `ldaps://`).
    pub url: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn find(program: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/local/sbin",
        "/usr/libexec",
        "/usr/bin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(program);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("{program} is not installed: apt-get install slapd ldap-utils")
}

fn first_dir(candidates: &[&str], containing: &str) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|d| {
        std::fs::read_dir(d)
            .is_ok_and(|mut it| it.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with(containing))))
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Slapd {
    pub fn start(options: Options) -> Slapd {
        let dir = std::env::temp_dir().join(format!(
            "scimitar-slapd-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let schema = first_dir(
            &[
                "/etc/ldap/schema",
                "/etc/openldap/schema",
                "/usr/local/etc/openldap/schema",
            ],
            "inetorgperson.schema",
        )
        .expect("OpenLDAP's schema files (inetorgperson.schema)");
        let modules = first_dir(
            &[
                "/usr/lib/ldap",
                "/usr/lib64/openldap",
                "/usr/lib/openldap",
                "/usr/libexec/openldap",
            ],
            "back_mdb",
        );
        let mut conf = String::new();
        for s in ["core", "cosine", "nis", "inetorgperson"] {
            conf += &format!("include {}/{s}.schema\n", schema.display());
        }
        if let Some(m) = &modules {
            conf += &format!("modulepath {}\nmoduleload back_mdb\n", m.display());
            if options.sync != Sync::Off {
                conf += "moduleload syncprov\n";
            }
        }
        conf += &format!("pidfile {0}/slapd.pid\nargsfile {0}/slapd.args\n", dir.display());
        if let Some((cert, key)) = &options.tls {
            std::fs::write(dir.join("cert.pem"), cert).unwrap();
            std::fs::write(dir.join("key.pem"), key).unwrap();
            conf += &format!(
                "TLSCertificateFile {0}/cert.pem\nTLSCertificateKeyFile {0}/key.pem\n",
                dir.display()
            );
        }
        conf += &format!(
            "database mdb\nmaxsize 1073741824\nsuffix \"{BASE}\"\nrootdn \"{ADMIN}\"\nrootpw {PASSWORD}\ndirectory {}/data\nindex objectClass,entryCSN,entryUUID eq\nindex uid,mail eq\n",
            dir.display()
        );
        conf += &options.database_config;
        conf += "\n";
        match options.sync {
            Sync::SessionLog => conf += "overlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-sessionlog 1000\n",
            Sync::NoSessionLog => conf += "overlay syncprov\nsyncprov-checkpoint 100 10\n",
            Sync::Off => {}
        }
        let conf_path = dir.join("slapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let ldif_path = dir.join("load.ldif");
        std::fs::write(&ldif_path, format!("{TREE}\n{}", options.ldif)).unwrap();
        let out = Command::new(find("slapadd"))
            .arg("-q")
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(&ldif_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let scheme = if options.tls.is_some() { "ldaps" } else { "ldap" };
        // Another process may take the port between our probe and slapd's
        // bind: try a few.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let url = format!("{scheme}://127.0.0.1:{port}");
            let log = std::fs::File::create(dir.join("slapd.log")).unwrap();
            let mut child = Command::new(find("slapd"))
                .arg("-d")
                .arg("0")
                .arg("-f")
                .arg(&conf_path)
                .arg("-h")
                .arg(format!("{url}/"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last_log = std::fs::read_to_string(dir.join("slapd.log")).unwrap_or_default();
                    last_log = format!("slapd exited ({status}): {last_log}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Slapd { child, dir, port, url };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = "slapd did not listen within 15 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("could not start slapd: {last_log}");
    }

    /// `ldapmodify` as the root DN; `ldif` holds change records
    /// (`changetype: add|modify|delete`).
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new(find("ldapmodify"))
            .args(["-x", "-H", &self.plain_url(), "-D", ADMIN, "-w", PASSWORD])
            .env("LDAPTLS_REQCERT", "never")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify failed: {}{}\n{ldif}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn delete(&self, dn: &str) {
        self.modify(&format!("dn: {dn}\nchangetype: delete\n"));
    }

    /// A single-valued attribute of one entry, read with `ldapsearch`.
    pub fn attribute(&self, dn: &str, attribute: &str) -> Option<String> {
        let out = Command::new(find("ldapsearch"))
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.plain_url(),
                "-D",
                ADMIN,
                "-w",
                PASSWORD,
            ])
            .args(["-s", "base", "-b", dn, "(objectClass=*)", attribute])
            .env("LDAPTLS_REQCERT", "never")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ldapsearch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let prefix = format!("{}: ", attribute.to_lowercase());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.to_lowercase().starts_with(&prefix))
            .map(|l| l.get(prefix.len()..).unwrap_or_default().to_string())
    }

    /// The entry's `entryUUID`.
    pub fn uuid(&self, dn: &str) -> String {
        self.attribute(dn, "entryUUID")
            .unwrap_or_else(|| panic!("{dn} has no entryUUID"))
    }

    fn plain_url(&self) -> String {
        self.url.clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // By PID: this server only, whatever else runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
