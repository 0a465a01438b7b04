//! Apicurio Registry as a child process: the schema registry of the sink stack, with
//! in-memory storage (H2), on free loopback ports.
//!
//! Two of its APIs matter here:
//! - the Confluent-compatible one, [`Apicurio::ccompat_url`], which the ingestor registers
//!   its schema with (`POST /subjects/<topic>-value/versions`) and which answers the ids
//!   that go into the wire format (`0x00` + 4-byte id). Those ids are *content* ids (the same
//!   schema under two subjects has one id, as with Confluent's registry), because
//!   `apicurio.ccompat.legacy-id-mode.enabled` is false; with it true they would be global
//!   ids (one per subject version).
//! - its own v2 API, [`Apicurio::converter_url`], which Apicurio's Kafka Connect converter
//!   looks ids up in (`GET /ids/contentIds/<id>` with `apicurio.registry.use-id=contentId`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::proc::{Managed, free_port, wait_for};

/// A running registry.
pub struct Apicurio {
    /// The process.
    pub process: Managed,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaById {
    schema: String,
}

impl Apicurio {
    /// Starts the registry (`APICURIO_HOME`, run by `APICURIO_JAVA`, Java 21 or newer) with
    /// its working files under `dir/apicurio`, and waits until its ccompat API answers.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let home = crate::tool("APICURIO_HOME")?;
        let java = crate::tool("APICURIO_JAVA")?;
        let work = dir.join("apicurio");
        std::fs::create_dir_all(&work)?;
        let port = free_port()?;
        let management_port = free_port()?;
        let mut cmd = Command::new(java);
        // Heap bounded (it holds a few schemas); C1 only and the serial collector: less
        // CPU at start on a small machine, and one GC thread.
        cmd.args([
            "-Xms32m",
            "-Xmx192m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
        ])
        .arg(format!("-Djava.io.tmpdir={}", work.display()))
        .arg("-Dquarkus.http.host=127.0.0.1")
        .arg(format!("-Dquarkus.http.port={port}"))
        // Health and metrics listen on a port of their own (9000 by default).
        .arg("-Dquarkus.management.host=127.0.0.1")
        .arg(format!("-Dquarkus.management.port={management_port}"))
        .arg(format!(
            "-Dapicurio.storage.snapshot.location={}",
            work.display()
        ))
        .arg(format!("-Dapicurio.import.work-dir={}", work.display()))
        // The default, stated: ccompat ids are content ids (see the module's docs).
        .arg("-Dapicurio.ccompat.legacy-id-mode.enabled=false")
        // A pool of 20 idle H2 connections by default.
        .arg("-Dapicurio.datasource.jdbc.initial-size=2")
        .arg("-Dapicurio.datasource.jdbc.min-size=2")
        .arg("-jar")
        .arg(home.join("quarkus-run.jar"))
        .current_dir(&work)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        let mut process = Managed::spawn("apicurio", cmd, work.join("apicurio.log"))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        let subjects = format!("http://127.0.0.1:{port}/apis/ccompat/v7/subjects");
        let up = wait_for(
            "Apicurio Registry's ccompat API",
            Duration::from_secs(120),
            || {
                if !process.is_running() {
                    return Some(false);
                }
                agent.get(&subjects).call().ok().map(|_| true)
            },
        )?;
        if !up {
            bail!("apicurio exited:\n{}", process.log_tail(30));
        }
        Ok(Self {
            process,
            port,
            agent,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Confluent-compatible API: the ingestor's `[schema_registry] url`.
    pub fn ccompat_url(&self) -> String {
        format!("{}/apis/ccompat/v7", self.url())
    }

    /// The registry's v2 API: the Connect converter's `apicurio.registry.url`.
    pub fn converter_url(&self) -> String {
        format!("{}/apis/registry/v2", self.url())
    }

    /// Registers the Avro `schema` under `subject` through the ccompat API; returns its id
    /// (the one the wire format carries).
    pub fn register(&self, subject: &str, schema: &str) -> anyhow::Result<u32> {
        let url = format!("{}/subjects/{subject}/versions", self.ccompat_url());
        let body = serde_json::json!({ "schema": schema }).to_string();
        let answer: Registered = self
            .agent
            .post(&url)
            .set("Content-Type", "application/vnd.schemaregistry.v1+json")
            .send_string(&body)
            .map_err(describe)
            .with_context(|| format!("POST {url}"))?
            .into_json()?;
        Ok(answer.id)
    }

    /// The schema of `id`, as `GET /schemas/ids/<id>` of the ccompat API returns it.
    pub fn schema(&self, id: u32) -> anyhow::Result<String> {
        let url = format!("{}/schemas/ids/{id}", self.ccompat_url());
        let answer: SchemaById = self
            .agent
            .get(&url)
            .call()
            .map_err(describe)
            .with_context(|| format!("GET {url}"))?
            .into_json()?;
        Ok(answer.schema)
    }
}

/// A ureq error with the body of an error status (the registry says why there).
fn describe(e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Status(code, response) => {
            let body = response.into_string().unwrap_or_default();
            anyhow::anyhow!("HTTP {code}: {body}")
        }
        other => other.into(),
    }
}
