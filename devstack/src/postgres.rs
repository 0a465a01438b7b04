//! A throwaway PostgreSQL server of Debian's packages: `initdb` into the caller's directory,
//! `postgres` on a free loopback port (TCP, trust authentication, the socket in the same
//! directory), never the system service. Rows are read with `psql`, no client crate.
//!
//! PostgreSQL refuses to run as root, and tests here run as root. Then the server runs in a
//! user namespace of its own (`unshare --user --map-user=1`): it sees itself as uid 1, its
//! files stay root's on the host, and the caller's directories need no other owner.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::proc::{Managed, free_port, wait_for};

/// The role and the database the server is set up with (trust authentication: no password).
pub const USER: &str = "ethhook";
/// The database of [`USER`] that the sink writes into.
pub const DATABASE: &str = "ethhook";

/// Field separator of [`Postgres::query`]'s `psql` output (ASCII unit separator).
const FIELD_SEP: char = '\u{1f}';

/// A running PostgreSQL server; stopped with a fast shutdown when dropped.
pub struct Postgres {
    /// The `postgres` process.
    pub process: Managed,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
}

impl Postgres {
    /// Initialises a cluster under `dir/postgres` and starts it on a free loopback port with
    /// [`DATABASE`] created. `POSTGRES_BIN` names the server's `bin` directory.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = crate::tool("POSTGRES_BIN")?;
        let root = dir.join("postgres");
        let data = root.join("data");
        std::fs::create_dir_all(&root)?;
        let out = server_command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "--encoding=UTF8", "--no-locale"])
            .arg("--no-sync")
            .output()
            .context("cannot run initdb")?;
        ensure_success("initdb", &out)?;

        let port = free_port()?;
        let mut cmd = server_command(&bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(&root)
            // A test's database: durability is not what is tested.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "shared_buffers=32MB"]);
        let process = Managed::spawn("postgres", cmd, root.join("postgres.log"))?;
        let mut pg = Self { process, port, bin };
        wait_for(
            "PostgreSQL to answer a query",
            Duration::from_secs(60),
            || pg.psql_in("postgres", "SELECT 1").ok(),
        )?;
        if !pg.process.is_running() {
            bail!("postgres exited:\n{}", pg.process.log_tail(20));
        }
        pg.psql_in("postgres", &format!("CREATE DATABASE {DATABASE}"))?;
        Ok(pg)
    }

    /// The JDBC URL of [`DATABASE`] (what the sink's `connection.url` becomes).
    pub fn jdbc_url(&self) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// Runs `sql` in [`DATABASE`]; returns its rows, each a list of fields as `psql`
    /// prints them unaligned (NULL as an empty string, `bytea` as `\x` hex).
    pub fn query(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let text = self.psql_in(DATABASE, sql)?;
        Ok(text
            .split('\0')
            .filter(|r| !r.is_empty())
            .map(|r| r.split(FIELD_SEP).map(str::to_owned).collect())
            .collect())
    }

    /// The columns of `table` in order, with their types as PostgreSQL writes them
    /// (`bytea`, `text[]`, `timestamp(6) without time zone`...); empty if there is no such
    /// table.
    pub fn columns(&self, table: &str) -> anyhow::Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relname = '{}' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            table.replace('\'', "''")
        );
        Ok(self
            .query(&sql)?
            .into_iter()
            .filter_map(|mut row| {
                let ty = row.pop()?;
                let name = row.pop()?;
                Some((name, ty))
            })
            .collect())
    }

    fn psql_in(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-0", "-v", "ON_ERROR_STOP=1"])
            .arg(format!("--field-separator={FIELD_SEP}"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-d", database, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .context("cannot run psql")?;
        ensure_success("psql", &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: its backends go with it. A server that does
        // not stop in time is killed by `Managed`'s own drop.
        self.process.signal(libc::SIGINT);
        let _ = self.process.wait_exit(Duration::from_secs(10));
    }
}

/// `program`, run in a user namespace of its own when this process is root (see the
/// module's documentation).
fn server_command(program: &Path) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut cmd = Command::new("unshare");
        cmd.args(["--user", "--map-user=1", "--map-group=1"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn ensure_success(what: &str, out: &Output) -> anyhow::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}
