//! A throwaway PostgreSQL cluster the bench starts itself (`--own-cluster`): Debian's
//! initdb/pg_ctl on a free port of 127.0.0.1, stock settings except that pg_stat_statements is
//! preloaded (`shared_preload_libraries` needs a server start, which a shared server cannot be
//! given), so every scenario can report Postgres time by statement. Stopped and deleted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A running throwaway cluster.
pub struct Cluster {
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    /// Its server URL (no database).
    pub server_url: String,
}

/// The newest Debian PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL's server binaries are not under /usr/lib/postgresql")?;
    versions
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

/// Whether this process runs as root (initdb and postgres refuse to: they run as `postgres`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

fn as_owner(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("{what}: cannot run"))?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

impl Cluster {
    /// Creates and starts a cluster with pg_stat_statements preloaded.
    pub fn start() -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let root = std::env::temp_dir().join(format!(
            "webhooks-bench-pg-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let data = root.join("data");
        let sockets = root.join("sockets");
        for dir in [&data, &sockets] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if running_as_root() {
            let mut chown = Command::new("chown");
            chown
                .args(["-R", "postgres:postgres"])
                .arg(&root)
                .arg(&data)
                .arg(&sockets);
            run(chown, "chown the cluster to postgres")?;
        }
        let port = crate::service::free_port()?;
        let cluster = Self {
            root,
            data,
            bin,
            server_url: format!("postgres://postgres@127.0.0.1:{port}"),
        };
        let mut initdb = as_owner(&cluster.bin.join("initdb"));
        initdb.arg("-D").arg(&cluster.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(initdb, "initdb")?;
        // Stock settings but for where it listens and the statistics extension.
        let settings = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n\
             pg_stat_statements.max = 10000\n",
            sockets.display()
        );
        let conf = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .with_context(|| format!("cannot read {}", conf.display()))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))?;
        let mut pg_ctl = as_owner(&cluster.bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&cluster.data)
            .arg("-l")
            .arg(cluster.data.join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        run(pg_ctl, "pg_ctl start")?;
        Ok(cluster)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut pg_ctl = as_owner(&self.bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        match pg_ctl.output() {
            Ok(output) if output.status.success() => {
                let _ = std::fs::remove_dir_all(&self.root);
            }
            Ok(output) => eprintln!(
                "[webhooks-bench] could not stop the throwaway cluster in {}: {}",
                self.data.display(),
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(e) => eprintln!("[webhooks-bench] could not run pg_ctl stop: {e}"),
        }
    }
}
