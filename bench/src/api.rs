//! A minimal blocking HTTP/1.1 client of the daemon's socket (one
//! connection per request, `Connection: close`): enough for the
//! benchmark's many concurrent clients on plain threads.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Api {
    socket: PathBuf,
}

impl Api {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
        }
    }

    /// One request; returns the status and the body.
    pub fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Vec<u8>)> {
        let mut s = UnixStream::connect(&self.socket)
            .with_context(|| format!("connect {}", self.socket.display()))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: zctr\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)?;
        let head_end = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no end of the response head")?;
        let status = std::str::from_utf8(&resp[..head_end])?
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status in the response")?;
        Ok((status, resp[head_end + 4..].to_vec()))
    }

    /// A request that must succeed (2xx); its JSON body (`Null` if empty).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, bytes) = self.raw(method, path, body)?;
        if !(200..300).contains(&status) {
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes).trim()
            );
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}
