//! The `health` command: asks the running daemon's HTTP listener, so a
//! container `HEALTHCHECK` needs no curl in the image.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(
        "health: cannot reach the daemon at {addr}: {reason} (is it running with [http] listen = \"{listen}\"?)"
    )]
    Unreachable {
        addr: SocketAddr,
        listen: SocketAddr,
        reason: String,
    },
    #[error("health: the daemon at {addr} answered something that is not HTTP")]
    NotHttp { addr: SocketAddr },
}

/// The address to connect to for a listen address: a wildcard listener
/// is reached on loopback.
pub fn connect_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// GETs `path` and returns the status code and body, within `timeout`
/// for the whole exchange.
pub async fn probe(
    listen: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), HealthError> {
    let addr = connect_addr(listen);
    let unreachable = |reason: String| HealthError::Unreachable {
        addr,
        listen,
        reason,
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {}s",
                timeout.as_secs()
            )));
        }
    };
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or(HealthError::NotHttp { addr })?;
    Ok((code, body.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        let a: SocketAddr = "0.0.0.0:9187".parse().unwrap();
        assert_eq!(connect_addr(a), "127.0.0.1:9187".parse().unwrap());
        let a: SocketAddr = "[::]:9187".parse().unwrap();
        assert_eq!(connect_addr(a), "[::1]:9187".parse().unwrap());
        let a: SocketAddr = "10.0.0.5:80".parse().unwrap();
        assert_eq!(connect_addr(a), a);
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_unreachable() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = probe(addr, "/healthz", Duration::from_secs(2))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot reach"), "{e}");
    }
}
