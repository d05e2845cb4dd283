//! The service under test: `webhooks serve` as a child process on a fresh database, killed when
//! its guard drops (errors and panics included), and the database dropped by [`Service::stop`].

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_postgres::NoTls;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

/// How long a starting service may take to answer health checks (it creates and migrates its
/// database first).
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// Where and how to start services.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The `webhooks` binary.
    pub bin: PathBuf,
    /// Postgres server URL without a database name, e.g. `postgres://postgres@127.0.0.1:5432`.
    pub server_url: String,
    /// Extra `serve` flags given with `--service-arg`.
    pub extra_args: Vec<String>,
    /// Directory for the services' logs.
    pub log_dir: PathBuf,
    /// Keep the databases after the run.
    pub keep_databases: bool,
}

/// How one service instance runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--disable-workers true`.
    pub disable_workers: bool,
    /// Connect to Postgres through this address (the counting proxy) instead of the server.
    pub via: Option<SocketAddr>,
    /// Join this existing database (another instance's) instead of creating a fresh one; it is
    /// then left for its creator to drop.
    pub database: Option<String>,
    /// Extra `serve` flags for this instance only.
    pub extra_args: Vec<String>,
}

/// A running service.
pub struct Service {
    child: Option<Child>,
    /// Its process id.
    pub pid: u32,
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// Name of its database.
    pub database: String,
    /// Direct URL of its database (never through the proxy).
    pub database_url: String,
    /// Its log file.
    pub log_path: PathBuf,
    server_url: String,
    keep_database: bool,
}

/// What a stopped service left.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Ended {
    /// Peak resident set (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Resident set at the end (VmRSS), KiB.
    pub rss_kib: u64,
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("could not bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Launcher {
    /// Starts a service on a fresh database and waits until its health check says SERVING.
    /// Retries twice with new ports if the process exits early (a port taken in between).
    pub async fn start(&self, label: &str, options: &Options) -> anyhow::Result<Service> {
        let mut last_error = None;
        for _ in 0..3 {
            match self.start_once(label, options).await {
                Ok(service) => return Ok(service),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the service did not start")))
    }

    async fn start_once(&self, label: &str, options: &Options) -> anyhow::Result<Service> {
        let joined = options.database.is_some();
        let database = options
            .database
            .clone()
            .unwrap_or_else(|| format!("webhooks_bench_{}", Uuid::new_v4().simple()));
        let database_url = format!("{}/{database}", self.server_url);
        let service_url = match options.via {
            Some(proxy) => with_host_port(&self.server_url, proxy, &database)?,
            None => database_url.clone(),
        };
        let grpc_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let log_path = self
            .log_dir
            .join(format!("service-{label}-{}.log", &database[15..23]));
        let log = File::create(&log_path)
            .with_context(|| format!("could not create {}", log_path.display()))?;
        let log_err = log.try_clone()?;
        let mut command = Command::new(&self.bin);
        command
            .arg("serve")
            .args(["--database-url", &service_url])
            .args(["--grpc-addr", &grpc_addr.to_string()])
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(["--allow-private-destinations", "true"])
            // The watchers scenario opens its (100 by default) streams from one address with
            // authentication off, where the cap counts per address.
            .args(["--max-watch-streams-per-credential", "0"])
            .args(["--log-level", "warn"]);
        if options.disable_workers {
            command.args(["--disable-workers", "true"]);
        }
        command.args(&self.extra_args);
        command.args(&options.extra_args);
        // Only the flags above configure it: none of the caller's environment fallbacks.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("WEBHOOKS_") || k == "DATABASE_URL" || k == "RUST_LOG" {
                command.env_remove(&key);
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = command
            .spawn()
            .with_context(|| format!("could not start {}", self.bin.display()))?;
        let mut service = Service {
            pid: child.id(),
            child: Some(child),
            grpc_addr,
            database,
            database_url,
            log_path,
            server_url: self.server_url.clone(),
            keep_database: self.keep_databases || joined,
        };
        if let Err(e) = service.wait_until_serving().await {
            service.kill();
            if !joined {
                let _ = drop_database(&self.server_url, &service.database).await;
            }
            return Err(e);
        }
        Ok(service)
    }
}

/// `server_url` with its host and port replaced by `addr` and `database` appended.
fn with_host_port(server_url: &str, addr: SocketAddr, database: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(server_url).context("--database-server is not a URL")?;
    url.set_host(Some(&addr.ip().to_string()))
        .map_err(|e| anyhow::anyhow!("cannot point the URL at the proxy: {e}"))?;
    url.set_port(Some(addr.port()))
        .map_err(|_| anyhow::anyhow!("cannot point the URL at the proxy"))?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

impl Service {
    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        let endpoint = Endpoint::from_shared(format!("http://{}", self.grpc_addr))?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "the service exited during start-up ({status}); its log ({}):\n{}",
                    self.log_path.display(),
                    tail(&self.log_path)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "the service did not report SERVING within {STARTUP_DEADLINE:?}; its log ({}):\n{}",
                    self.log_path.display(),
                    tail(&self.log_path)
                );
            }
            if let Ok(channel) = endpoint.connect().await {
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if let Ok(answer) = answer
                    && answer.into_inner().status == ServingStatus::Serving as i32
                {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens `n` gRPC connections to the service.
    pub async fn channels(&self, n: usize) -> anyhow::Result<Vec<Channel>> {
        let mut channels = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            channels.push(self.channel(Some(Duration::from_secs(30))).await?);
        }
        Ok(channels)
    }

    /// One gRPC connection; `timeout` applies per call (leave it off for long streams).
    pub async fn channel(&self, timeout: Option<Duration>) -> anyhow::Result<Channel> {
        let mut endpoint = Endpoint::from_shared(format!("http://{}", self.grpc_addr))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5));
        if let Some(timeout) = timeout {
            endpoint = endpoint.timeout(timeout);
        }
        endpoint
            .connect()
            .await
            .with_context(|| format!("could not connect to the service at {}", self.grpc_addr))
    }

    /// A direct connection to the service's database.
    pub async fn db(&self) -> anyhow::Result<tokio_postgres::Client> {
        connect(&self.database_url).await
    }

    /// Peak and current resident set from /proc, KiB.
    pub fn memory(&self) -> Ended {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ended {
            peak_rss_kib: field("VmHWM:"),
            rss_kib: field("VmRSS:"),
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Reads the memory figures, kills the process and drops its database.
    pub async fn stop(mut self) -> anyhow::Result<Ended> {
        let ended = self.halt();
        if !self.keep_database {
            drop_database(&self.server_url, &self.database).await?;
        }
        ended
    }

    /// Reads the memory figures and kills the process, leaving its database for another
    /// instance (the caller drops it).
    pub fn kill_keeping_database(mut self) -> anyhow::Result<Ended> {
        self.keep_database = true;
        self.halt()
    }

    /// Memory figures, then the kill; an error when the process had already died.
    fn halt(&mut self) -> anyhow::Result<Ended> {
        let ended = self.memory();
        let was_alive = self.alive();
        self.kill();
        if !was_alive {
            bail!(
                "the service died during the run; its log ({}):\n{}",
                self.log_path.display(),
                tail(&self.log_path)
            );
        }
        Ok(ended)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let running = self.child.is_some();
        self.kill();
        // Not stopped through `stop` (a scenario failed half-way): drop the database in the
        // background so failed runs do not leave databases behind.
        if running
            && !self.keep_database
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (server, database) = (self.server_url.clone(), self.database.clone());
            runtime.spawn(async move {
                let _ = drop_database(&server, &database).await;
            });
        }
    }
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Connects to a database and drives the connection in the background.
pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) =
        tokio::time::timeout(Duration::from_secs(10), tokio_postgres::connect(url, NoTls))
            .await
            .with_context(|| format!("connecting to {url} timed out"))?
            .with_context(|| format!("could not connect to {url}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Drops a bench database (forcing out any connection left).
pub async fn drop_database(server_url: &str, database: &str) -> anyhow::Result<()> {
    let admin = connect(&format!("{server_url}/postgres")).await?;
    let quoted = format!("\"{}\"", database.replace('"', "\"\""));
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .await
        .with_context(|| format!("could not drop database {database}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_keep_the_user() {
        let url = with_host_port(
            "postgres://postgres@127.0.0.1:5432",
            "127.0.0.1:6000".parse().unwrap(),
            "db1",
        )
        .unwrap();
        assert_eq!(url, "postgres://postgres@127.0.0.1:6000/db1");
    }
}
