//! `GET /v1/containers/{id}/stats`: what a container uses now. CPU, memory,
//! pids and block I/O from its cgroup (`zctr_cgroups::stats`, the same on v1,
//! v2 and hybrid hosts); network I/O from its own network namespace
//! (`/proc/<init>/net/dev`, every interface but `lo`) when it has one —
//! `null` for a container on the host's network or a joined one (its
//! counters are not the container's alone) and for a stopped one.

use crate::model::{now_ms, Status};
use common::config::NetworkMode;
use serde::Serialize;
use zctr_cgroups::stats::Stats;

#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerStats {
    pub id: String,
    pub status: Status,
    /// When it was read, in milliseconds since the Unix epoch (two reads
    /// give CPU use as a share: Δusage_ns / Δread_ms).
    pub read_ms: u64,
    #[serde(flatten)]
    pub cgroup: Stats,
    pub network: Option<Network>,
}

/// `/proc/PID/net/dev`: received and sent bytes summed over every interface
/// but `lo`.
pub fn parse_net_dev(text: &str) -> Network {
    let (mut rx, mut tx) = (0, 0);
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = counters
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    Network {
        rx_bytes: rx,
        tx_bytes: tx,
    }
}

/// Reads the stats of a container (blocking: run off the async threads).
pub fn read(
    id: &str,
    status: Status,
    cgroup: &zctr_cgroups::CgroupPath,
    network: &NetworkMode,
    init: Option<i32>,
) -> ContainerStats {
    let net = match (network, init, status) {
        (NetworkMode::Private, Some(pid), Status::Running | Status::Paused | Status::Created) => {
            std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
                .ok()
                .map(|t| parse_net_dev(&t))
        }
        _ => None,
    };
    ContainerStats {
        id: id.to_string(),
        status,
        read_ms: now_ms(),
        cgroup: zctr_cgroups::stats::read(cgroup),
        network: net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_sums_every_interface_but_lo() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:     500       5    0    0    0     0          0         0      700       7    0    0    0     0       0          0
 veth1:      50       1    0    0    0     0          0         0       70       1    0    0    0     0       0          0
";
        let n = parse_net_dev(text);
        assert_eq!((n.rx_bytes, n.tx_bytes), (550, 770));
    }
}
