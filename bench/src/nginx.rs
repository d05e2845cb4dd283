//! The independent judge: a plain Debian nginx answering `return 200` on 127.0.0.1, started by
//! the bench with a generated configuration (installed by scripts/install-nginx.sh when
//! missing). It verifies nothing, so delivered counts come from the database; its point is that
//! the bench's own receiver is never the bound.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running nginx, killed on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

fn find() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The nginx binary, installed from Debian by scripts/install-nginx.sh when missing.
fn binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = find() {
        return Ok(bin);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/install-nginx.sh");
    eprintln!("[webhooks-bench] nginx is missing: running {script}");
    let status = Command::new("bash")
        .arg(script)
        .status()
        .context("cannot run scripts/install-nginx.sh")?;
    if !status.success() {
        bail!("scripts/install-nginx.sh failed ({status})");
    }
    find().context("nginx is still missing after scripts/install-nginx.sh")
}

impl Nginx {
    /// Starts nginx on a free port of 127.0.0.1 and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = binary()?;
        let dir = std::env::temp_dir().join(format!(
            "webhooks-bench-nginx-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let port = crate::service::free_port()?;
        let d = dir.display();
        // One worker: the receiver should cost little CPU beside the service; `return 200`
        // discards the body and keeps the connection alive.
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 8192; }}\n\
             http {{\n  access_log off;\n  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 200; }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)
            .with_context(|| format!("cannot write {}", conf_path.display()))?;
        let child = Command::new(&bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut nginx = Self { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(nginx);
            }
            if let Some(status) = nginx.child.try_wait()? {
                bail!(
                    "nginx exited at start ({status}): {}",
                    std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default()
                );
            }
            if Instant::now() >= deadline {
                bail!("nginx did not listen on {addr} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The URL of endpoint `index`.
    pub fn url(&self, index: u16) -> String {
        format!("http://{}/hook/{index}", self.addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: the master stops its worker and exits (SIGKILL would leave the worker).
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
