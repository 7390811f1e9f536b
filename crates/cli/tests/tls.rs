//! HTTPS end to end, through the real `slipway` binary, real clients (curl, openssl s_client) and a real
//! ACME server (Debian's `pebble`, with `pebble-challtestsrv` as the DNS that points every name here):
//! certificates from files and from ACME, HTTP/2 and HTTP/1.1 over TLS with the same routing, canary
//! stickiness over HTTP/2, renewal, `slipway certs`, and the bad inputs (no SNI, unknown SNI, plain HTTP
//! to the TLS port, a corrupt certificate file, a host the CA refuses) each ending only their own request.

mod support;

use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

/// The TLS listener's address, from `proxy-tls.addr`.
fn tls_addr(world: &World) -> SocketAddr {
    let file = world.daemon.state.join("proxy-tls.addr");
    wait_for(DEADLINE, "proxy-tls.addr", || {
        std::fs::read_to_string(&file).ok()?.trim().parse().ok()
    })
}

/// A self-signed certificate for `names` (the first is the CN): (cert, key) PEM paths in `dir`.
fn self_signed(dir: &Path, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    self_signed_with(dir, file, names, "basicConstraints=critical,CA:TRUE")
}

/// As [`self_signed`], with these basic constraints (`CA:FALSE` for a server's own certificate that
/// rustls, unlike OpenSSL, will not accept as a CA).
fn self_signed_with(
    dir: &Path,
    file: &str,
    names: &[&str],
    constraints: &str,
) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{file}.pem"));
    let key = dir.join(format!("{file}.key"));
    let san: Vec<String> = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(_) => format!("IP:{n}"),
            Err(_) => format!("DNS:{n}"),
        })
        .collect();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj"])
        .arg(format!("/CN={}", names[0]))
        .arg("-addext")
        .arg(format!("subjectAltName={}", san.join(",")))
        .arg("-addext")
        .arg(constraints)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// curl over TLS to `host` at the TLS listener, trusting `ca`: (exit ok, body, HTTP version, headers).
fn curl(addr: SocketAddr, host: &str, ca: &Path, args: &[&str], path: &str) -> Curl {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-D",
            "-",
            "-w",
            "\n%{http_version}",
        ])
        .arg("--cacert")
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{}:127.0.0.1", addr.port()))
        .args(args)
        .arg(format!("https://{host}:{}{path}", addr.port()))
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (rest, version) = text.rsplit_once('\n').unwrap_or((&text, ""));
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    Curl {
        ok: out.status.success(),
        head: head.to_ascii_lowercase(),
        body: body.trim().to_string(),
        version: version.trim().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

#[derive(Debug)]
struct Curl {
    ok: bool,
    head: String,
    body: String,
    version: String,
    #[allow(dead_code)] // Shown in failure messages.
    stderr: String,
}

/// `openssl s_client` to the TLS listener with these extra arguments; its whole output.
fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl must be installed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn certs(world: &World) -> Vec<Value> {
    let run = world.slipway(&["certs", "--json"]).ok();
    run.json().as_array().cloned().unwrap_or_default()
}

fn cert_of(world: &World, host: &str) -> Option<Value> {
    certs(world).into_iter().find(|c| c["host"] == host)
}

#[test]
fn certificates_from_files_serve_http2_and_http11_with_the_same_routing() {
    let world = World::with_daemon_args(&["--tls-listen", "127.0.0.1:0"]);
    let dir = world.root().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&dir, "shop", &["shop.test"]);
    let routing = format!(
        "[routing]\nhosts = [\"shop.test\"]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        cert.display(),
        key.display()
    );
    world.deploy_ok(&Conf::demo("v1").tail(&routing));
    let addr = tls_addr(&world);
    wait_until(DEADLINE, "the certificate loaded", || {
        cert_of(&world, "shop.test").is_some_and(|c| c["issuer"] == "shop.test")
    });

    let h2 = curl(addr, "shop.test", &cert, &["--http2"], "/");
    assert!(h2.ok, "{h2:?}");
    assert_eq!(h2.body, "hello from v1");
    assert_eq!(h2.version, "2", "ALPN chose HTTP/2: {h2:?}");
    let h1 = curl(addr, "shop.test", &cert, &["--http1.1"], "/");
    assert_eq!(
        (h1.body.as_str(), h1.version.as_str()),
        ("hello from v1", "1.1"),
        "{h1:?}"
    );
    let alpn = s_client(addr, &["-servername", "shop.test", "-alpn", "h2"]);
    assert!(alpn.contains("ALPN protocol: h2"), "{alpn}");
    assert!(alpn.contains("TLSv1.3"), "{alpn}");
    // TLS 1.1 and older are refused.
    let old = s_client(addr, &["-servername", "shop.test", "-tls1_1"]);
    assert!(
        old.contains("Cipher is (NONE)") && old.contains("handshake failure"),
        "{old}"
    );

    // Bad input, each ending only itself.
    let unknown = curl(addr, "other.test", &cert, &["--http2"], "/");
    assert!(
        !unknown.ok,
        "no certificate for an unknown name: {unknown:?}"
    );
    let no_sni = s_client(addr, &["-noservername"]);
    assert!(
        !no_sni.contains("BEGIN CERTIFICATE"),
        "no SNI, no fallback: {no_sni}"
    );
    let plain = support::http::get(addr, "/", &[("Host", "shop.test")]).expect("an answer");
    assert_eq!(plain.status, 400);
    assert!(
        plain.body.contains("this port speaks HTTPS"),
        "{}",
        plain.body
    );
    // A corrupt file: the old certificate keeps serving, and `certs` says why.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    wait_until(DEADLINE, "the corrupt file reported", || {
        cert_of(&world, "shop.test").is_some_and(|c| c["last_error"].is_string())
    });
    let still = curl(
        addr,
        "shop.test",
        &dir.join("shop.key").with_file_name("none"),
        &["-k"],
        "/",
    );
    assert_eq!(still.body, "hello from v1", "{still:?}");
    // The plain listener never stopped.
    let plain = support::http::get(world.daemon.proxy, "/", &[("Host", "shop.test")]).unwrap();
    assert_eq!(plain.status, 200);
    // A good file again is picked up.
    let (cert2, _) = self_signed(&dir, "shop2", &["shop.test"]);
    std::fs::rename(dir.join("shop2.key"), &key).unwrap();
    std::fs::rename(&cert2, &cert).unwrap();
    wait_until(DEADLINE, "the repaired file loaded", || {
        cert_of(&world, "shop.test").is_some_and(|c| c["last_error"].is_null())
    });
    let again = curl(addr, "shop.test", &cert, &["--http2"], "/");
    assert_eq!(again.body, "hello from v1", "{again:?}");
}

type TlsClient = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A daemon (started with `args` besides `--tls-listen`) serving the demo app on `ws.test` over TLS
/// with a self-signed certificate, and a raw HTTP/1.1 client connection to it.
fn ws_world_with(args: &[&str]) -> (World, TlsClient) {
    let world = World::with_daemon_args(&[&["--tls-listen", "127.0.0.1:0"], args].concat());
    let dir = world.root().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    // CA:FALSE: the client below trusts this very certificate as its root, and webpki refuses a CA
    // certificate as the server's own.
    let (cert, key) = self_signed_with(
        &dir,
        "ws",
        &["ws.test"],
        "basicConstraints=critical,CA:FALSE",
    );
    let routing = format!(
        "[routing]\nhosts = [\"ws.test\"]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        cert.display(),
        key.display()
    );
    world.deploy_ok(&Conf::demo("v1").tail(&routing));
    wait_until(DEADLINE, "the certificate loaded", || {
        cert_of(&world, "ws.test").is_some_and(|c| c["issuer"] == "ws.test")
    });
    let client = tls_connect(&world).expect("a TLS connection");
    (world, client)
}

fn ws_world() -> (World, TlsClient) {
    ws_world_with(&[])
}

/// A TLS connection to `ws.test` on the world's HTTPS listener, its handshake done.
fn tls_connect(world: &World) -> std::io::Result<TlsClient> {
    use rustls::pki_types::pem::PemObject;
    let cert = world.root().join("certs").join("ws.pem");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("ws.test").unwrap();
    let mut session = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(tls_addr(world))?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    while session.is_handshaking() {
        session.complete_io(&mut tcp)?;
    }
    Ok(rustls::StreamOwned::new(session, tcp))
}

const UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
      Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Sends `bytes` and reads one response head.
fn send_and_read_head(tls: &mut TlsClient, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    tls.write_all(bytes).unwrap();
    tls.flush().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).expect("an answer");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn echo_of(tls: &mut TlsClient, sent: &str) -> String {
    use std::io::Read;
    let mut echoed = vec![0u8; sent.len()];
    tls.read_exact(&mut echoed)
        .expect("the echo through the tunnel");
    String::from_utf8_lossy(&echoed).into_owned()
}

/// WebSockets over TLS: an HTTP/1.1 upgrade on the HTTPS listener is routed like any request, and the
/// tunnel carries bytes both ways. (The client waits for the 101 before it sends, as RFC 6455 says.)
#[test]
fn websockets_upgrade_over_tls() {
    use std::io::Write;
    let (_world, mut tls) = ws_world();
    let head = send_and_read_head(&mut tls, UPGRADE);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tls.write_all(b"early bytes|then more").unwrap();
    tls.flush().unwrap();
    assert_eq!(
        echo_of(&mut tls, "early bytes|then more"),
        "early bytes|then more"
    );
}

/// A client that does not wait for the 101 (other upgrade protocols pipeline): the bytes right behind the
/// upgrade request are held until the switch, then reach the instance first.
#[test]
fn bytes_sent_behind_an_upgrade_request_over_tls_pass_after_the_switch() {
    let (_world, mut tls) = ws_world();
    let sent = [UPGRADE, b"sent before the 101"].concat();
    let head = send_and_read_head(&mut tls, &sent);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(
        echo_of(&mut tls, "sent before the 101"),
        "sent before the 101"
    );
}

/// `--max-connections-per-client` counts the plain and the TLS listener together: with both slots held
/// by plain connections a TLS connection is refused, and admitted once one of them closes.
#[test]
fn connection_limits_count_plain_and_tls_connections_together() {
    let (world, first_tls) = ws_world_with(&["--max-connections-per-client", "2"]);
    drop(first_tls);
    // Two plain keep-alive connections that each got an answer hold both slots (the TLS connection
    // above may keep its slot a moment after the close: a refused one is tried again).
    let mut held = Vec::new();
    wait_until(DEADLINE, "two slots held by plain connections", || {
        let mut conn = support::http::Conn::new(world.daemon.proxy);
        if conn
            .get("/", &[("Host", "ws.test")])
            .is_ok_and(|r| r.status == 200)
        {
            held.push(conn);
        }
        held.len() == 2
    });
    assert!(
        tls_connect(&world).is_err(),
        "a third connection over TLS was admitted"
    );
    drop(held.pop());
    wait_until(
        DEADLINE,
        "a TLS connection admitted once a slot is free",
        || tls_connect(&world).is_ok(),
    );
}

/// HTTP/1.1 over TLS meets the same head parser as plain HTTP: a request framed two ways (the smuggling
/// shape) is refused with a 400 and never reaches an instance.
#[test]
fn a_request_framed_two_ways_over_tls_is_refused() {
    let (_world, mut tls) = ws_world();
    let smuggled = b"POST / HTTP/1.1\r\nHost: ws.test\r\nContent-Length: 4\r\n\
          Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let head = send_and_read_head(&mut tls, smuggled);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

#[test]
fn fallback_certificate_answers_other_names_and_no_sni() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "wild", &["*.apps.test"]);
    let world = World::with_daemon_args(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    world.deploy_ok(
        &Conf::demo("v1")
            .tail("[routing]\nhosts = [\"a.apps.test\"]\nredirect_https = true\nhsts = true\n"),
    );
    let addr = tls_addr(&world);
    let wild = curl(addr, "a.apps.test", &cert, &["--http2"], "/");
    assert_eq!(wild.body, "hello from v1", "{wild:?}");
    assert!(
        wild.head
            .contains("strict-transport-security: max-age=31536000"),
        "{wild:?}"
    );
    let no_sni = s_client(addr, &["-noservername"]);
    assert!(
        no_sni.contains("CN = *.apps.test") || no_sni.contains("CN=*.apps.test"),
        "{no_sni}"
    );
    // Plain HTTP is redirected, ACME challenges excepted.
    let plain =
        support::http::get(world.daemon.proxy, "/x?y=1", &[("Host", "a.apps.test")]).unwrap();
    assert_eq!(plain.status, 308);
    assert_eq!(plain.header("location"), Some("https://a.apps.test/x?y=1"));
    let challenge = support::http::get(
        world.daemon.proxy,
        "/.well-known/acme-challenge/none",
        &[("Host", "a.apps.test")],
    )
    .unwrap();
    // An unknown token goes to the app (whose own ACME client it may be), never redirected.
    assert_ne!(challenge.status, 308);
    assert_eq!(challenge.header("location"), None);
}

/// A free loopback port (bound, read, released: pebble takes ports only in its config).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// pebble and its DNS, stopped by PID when dropped.
struct Pebble {
    children: Vec<Child>,
    directory: String,
    /// The root pebble's own API certificate chains to (for `--acme-ca-root`).
    api_root: PathBuf,
    management: u16,
}

impl Pebble {
    /// pebble's directory at `https://127.0.0.1:{listen}/dir`, its API certificate in
    /// `dir/pebble-api.pem`, validating on the daemon's ports.
    fn start_at(
        dir: &Path,
        listen: u16,
        http_port: u16,
        tls_port: u16,
        validity_secs: u64,
        blocked: &[&str],
    ) -> Pebble {
        let (api_cert, api_key) = self_signed_with(
            dir,
            "pebble-api",
            &["127.0.0.1", "localhost"],
            "basicConstraints=critical,CA:FALSE",
        );
        let (management, dns) = (free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": api_cert, "privateKey": api_key,
            "httpPort": http_port, "tlsPort": tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
            "domainBlocklist": blocked,
            "certificateValidityPeriod": validity_secs,
        }});
        let config_file = dir.join("pebble.json");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv must be installed (.ci/run: apt-get install pebble)");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // Strict: the API changes RFC 8555's errata and pebble's authors expect of clients already.
            .arg("-strict")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble must be installed (.ci/run: apt-get install pebble)");
        let p = Pebble {
            children: vec![dns_server, pebble],
            directory: format!("https://127.0.0.1:{listen}/dir"),
            api_root: api_cert,
            management,
        };
        wait_until(DEADLINE, "pebble to answer", || {
            Command::new("curl")
                .args(["-sf", "--cacert"])
                .arg(&p.api_root)
                .arg(&p.directory)
                .output()
                .is_ok_and(|o| o.status.success())
        });
        p
    }

    /// pebble's word on a certificate it issued: `Valid` or `Revoked`.
    fn cert_status(&self, serial: &str) -> String {
        let out = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(&self.api_root)
            .arg(format!(
                "https://127.0.0.1:{}/cert-status-by-serial/{serial}",
                self.management
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "pebble knows no certificate {serial}");
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        answer["Status"].as_str().unwrap_or_default().to_owned()
    }

    /// The root of the certificates pebble issues (made anew at each start).
    fn issuing_root(&self, dir: &Path) -> PathBuf {
        let out = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(&self.api_root)
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .unwrap();
        assert!(out.status.success());
        let file = dir.join("pebble-root.pem");
        std::fs::write(&file, out.stdout).unwrap();
        file
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn acme_issues_serves_renews_and_reports_a_refused_host() {
    let dir = tempfile::tempdir().unwrap();
    // The daemon first: pebble validates on the ports it is given, which are the daemon's.
    let api_root = dir.path().join("pebble-api.pem");
    let directory_port = free_port();
    let directory = format!("https://127.0.0.1:{directory_port}/dir");
    let world = World::with_daemon_args(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--acme-email",
        "ops@shop.test",
        "--acme-directory",
        &directory,
        "--acme-ca-root",
        api_root.to_str().unwrap(),
    ]);
    let addr = tls_addr(&world);
    // 30 s certificates: renewed at about 20 s.
    let pebble = Pebble::start_at(
        dir.path(),
        directory_port,
        world.daemon.proxy.port(),
        addr.port(),
        30,
        &["blocked.test"],
    );
    world.deploy_ok(
        &Conf::demo("v1")
            .tail("[routing]\nhosts = [\"shop.test\", \"blocked.test\"]\ntls = \"auto\"\n"),
    );
    let first = wait_for(
        Duration::from_secs(90),
        "a certificate for shop.test",
        || cert_of(&world, "shop.test").filter(|c| c["not_after"].is_u64()),
    );
    assert!(
        first["issuer"].as_str().unwrap().contains("Pebble"),
        "{first}"
    );
    assert!(
        first["next_renewal"].as_u64() < first["not_after"].as_u64(),
        "{first}"
    );

    let root = pebble.issuing_root(dir.path());
    let h2 = curl(addr, "shop.test", &root, &["--http2"], "/");
    assert_eq!(
        (h2.body.as_str(), h2.version.as_str()),
        ("hello from v1", "2"),
        "{h2:?}"
    );
    let h1 = curl(addr, "shop.test", &root, &["--http1.1"], "/");
    assert_eq!(h1.body, "hello from v1", "{h1:?}");

    // The refused host: an error in `certs` and an event, while shop.test serves.
    let blocked = wait_for(Duration::from_secs(60), "blocked.test's error", || {
        cert_of(&world, "blocked.test").filter(|c| c["last_error"].is_string())
    });
    assert!(blocked["failures"].as_u64() >= Some(1), "{blocked}");

    // Key and certificate files are the daemon's alone.
    for file in ["account.json", "shop.test.pem", "shop.test.key"] {
        let mode = std::fs::metadata(world.daemon.state.join("tls").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600, "{file}");
    }
    assert!(!world.daemon.log_text().contains("PRIVATE KEY"));

    // Renewed before it expires, with no request failing meanwhile.
    let renewed = wait_for(Duration::from_secs(90), "the certificate renewed", || {
        cert_of(&world, "shop.test").filter(|c| c["not_after"] != first["not_after"])
    });
    assert!(renewed["last_error"].is_null(), "{renewed}");
    let after = curl(addr, "shop.test", &root, &["--http2"], "/");
    assert_eq!(after.body, "hello from v1", "{after:?}");

    // `certs renew` orders one now.
    let before = cert_of(&world, "shop.test").unwrap();
    world.slipway(&["certs", "renew", "shop.test"]).ok();
    wait_for(Duration::from_secs(60), "the asked-for renewal", || {
        cert_of(&world, "shop.test").filter(|c| c["not_after"] != before["not_after"])
    });
    let unknown = world.slipway(&["certs", "renew", "nobody.test"]).failed();
    assert!(
        unknown.stderr.contains("no app names nobody.test"),
        "{}",
        unknown.stderr
    );

    // `certs revoke`: a new certificate is served, then pebble has the old one revoked.
    let old = wait_for(Duration::from_secs(60), "a settled certificate", || {
        cert_of(&world, "shop.test").filter(|c| c["serial"].is_string())
    });
    let old_serial = old["serial"].as_str().unwrap().to_owned();
    assert_eq!(pebble.cert_status(&old_serial), "Valid");
    let bad_reason = world
        .slipway(&["certs", "revoke", "shop.test", "--reason", "because"])
        .failed();
    assert!(
        bad_reason.stderr.contains("key-compromise"),
        "{}",
        bad_reason.stderr
    );
    world
        .slipway(&["certs", "revoke", "shop.test", "--reason", "key-compromise"])
        .ok();
    wait_until(
        Duration::from_secs(60),
        "the old certificate revoked",
        || pebble.cert_status(&old_serial) == "Revoked",
    );
    let replaced = cert_of(&world, "shop.test").unwrap();
    assert_ne!(replaced["serial"], old["serial"], "{replaced}");
    let note = wait_for(Duration::from_secs(30), "the revocation in certs", || {
        cert_of(&world, "shop.test")
            .and_then(|c| c["revocation"].as_str().map(str::to_owned))
            .filter(|n| n.contains("revoked (key-compromise)"))
    });
    assert!(note.contains(&old_serial), "{note}");
    let served = curl(addr, "shop.test", &root, &["--http2"], "/");
    assert_eq!(served.body, "hello from v1", "{served:?}");
}

#[test]
fn canary_weight_and_sticky_cookie_hold_over_http2() {
    let world = World::with_daemon_args(&["--tls-listen", "127.0.0.1:0"]);
    let dir = world.root().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&dir, "shop", &["shop.test"]);
    let routing = format!(
        "[routing]\nhosts = [\"shop.test\"]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        cert.display(),
        key.display()
    );
    world.deploy_ok(&Conf::demo("v1").tail(&routing));
    world.write(
        &Conf::demo("v2")
            .deploy(
                "strategy = \"canary\"\nprogress_deadline = \"60s\"\n\
                 steps = [ { weight = 50 }, { pause = {} } ]\nsticky = \"cookie\"\n",
            )
            .tail(&routing),
    );
    world.slipway(&["deploy", "--detach"]).ok();
    wait_until(
        Duration::from_secs(90),
        "the canary at 50 %, paused",
        || {
            let c = world.status()["rollout"]["canary"].clone();
            c["effective_weight"] == 50 && c["step"] == 2
        },
    );
    let addr = tls_addr(&world);
    wait_until(DEADLINE, "the certificate loaded", || {
        cert_of(&world, "shop.test").is_some_and(|c| c["issuer"] == "shop.test")
    });

    // New users over HTTP/2 split between the releases (none on one side: odds of 2 in 10^12).
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let answer = curl(addr, "shop.test", &cert, &["--http2"], "/");
        assert_eq!(answer.version, "2", "{answer:?}");
        *seen.entry(answer.body).or_insert(0) += 1;
    }
    assert!(
        seen.contains_key("hello from v1") && seen.contains_key("hello from v2"),
        "both releases get HTTP/2 users at 50 %: {seen:?}"
    );
    // A user keeps their release by the sticky cookie, over HTTP/2.
    for user in 0..6 {
        let jar = dir.join(format!("jar{user}"));
        let jar = jar.to_str().unwrap();
        let first = curl(addr, "shop.test", &cert, &["--http2", "-c", jar], "/");
        assert!(first.head.contains("set-cookie"), "{first:?}");
        for _ in 0..4 {
            let again = curl(
                addr,
                "shop.test",
                &cert,
                &["--http2", "-b", jar, "-c", jar],
                "/",
            );
            assert_eq!(again.body, first.body, "a user flapped over HTTP/2");
        }
    }
    world.slipway(&["promote"]).ok();
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "{status}");
}

#[test]
fn acme_tls_alpn_01_is_answered_on_the_tls_listener() {
    let dir = tempfile::tempdir().unwrap();
    let api_root = dir.path().join("pebble-api.pem");
    let directory_port = free_port();
    let directory = format!("https://127.0.0.1:{directory_port}/dir");
    let world = World::with_daemon_args(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--acme-directory",
        &directory,
        "--acme-ca-root",
        api_root.to_str().unwrap(),
        "--acme-challenge",
        "tls-alpn-01",
    ]);
    let addr = tls_addr(&world);
    // pebble's HTTP-01 port is a closed one: only TLS-ALPN-01 can succeed.
    let pebble = Pebble::start_at(
        dir.path(),
        directory_port,
        free_port(),
        addr.port(),
        3600,
        &[],
    );
    world.deploy_ok(&Conf::demo("v1").tail("[routing]\nhosts = [\"alpn.test\"]\ntls = \"auto\"\n"));
    let cert = wait_for(
        Duration::from_secs(90),
        "a certificate for alpn.test",
        || cert_of(&world, "alpn.test").filter(|c| c["not_after"].is_u64()),
    );
    assert!(cert["last_error"].is_null(), "{cert}");
    let root = pebble.issuing_root(dir.path());
    let answer = curl(addr, "alpn.test", &root, &["--http2"], "/");
    assert_eq!(answer.body, "hello from v1", "{answer:?}");
}

#[test]
fn api_and_dashboard_over_tls_with_a_secure_session_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "api", &["127.0.0.1"]);
    let world = World::with_daemon_args(&[
        "--api",
        "127.0.0.1:0",
        "--api-tls-cert",
        cert.to_str().unwrap(),
        "--api-tls-key",
        key.to_str().unwrap(),
        "--token",
        "secret-token-for-the-tls-test",
    ]);
    let api = world.api_addr();
    let run = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-D", "-", "--cacert"])
            .arg(&cert)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    let health = run(&[
        "-H",
        "Authorization: Bearer secret-token-for-the-tls-test",
        &format!("https://{api}/v1/health"),
    ]);
    assert!(health.contains("\"ok\":true"), "{health}");
    let certs = run(&[
        "-H",
        "Authorization: Bearer secret-token-for-the-tls-test",
        &format!("https://{api}/v1/certs"),
    ]);
    assert!(certs.ends_with("[]"), "{certs}");
    let login = run(&[
        "--data-urlencode",
        "token=secret-token-for-the-tls-test",
        &format!("https://{api}/ui/login"),
    ]);
    let cookie = login
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no session cookie: {login}"));
    assert!(cookie.contains("; secure"), "{cookie}");
    assert!(cookie.contains("httponly"), "{cookie}");
    // The CLI over TLS: with the certificate trusted (--ca-cert), and refused without it, saying so.
    let cli = |extra: &[&str]| {
        let mut c = Command::new(bin());
        c.args(["--server", &format!("https://{api}")])
            .args(extra)
            .args(["certs", "--json"])
            .env("SLIPWAY_TOKEN", "secret-token-for-the-tls-test")
            .env_remove("SLIPWAY_CA_CERT")
            .env_remove("SLIPWAY_SERVER");
        run_command(c, Duration::from_secs(60))
    };
    let listed = cli(&["--ca-cert", cert.to_str().unwrap()]).ok();
    assert_eq!(listed.stdout.trim(), "[]", "{listed}");
    let untrusted = cli(&[]).failed();
    assert!(untrusted.stderr.contains("--ca-cert"), "{untrusted}");
    // Plain HTTP to the TLS API gets nowhere.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://{api}/v1/health")])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"ok\":true"));
}

#[test]
fn no_request_over_tls_fails_while_deploying_and_rolling_back() {
    let world = World::with_daemon_args(&["--tls-listen", "127.0.0.1:0"]);
    let dir = world.root().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&dir, "shop", &["shop.test"]);
    let routing = format!(
        "[routing]\nhosts = [\"shop.test\"]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        cert.display(),
        key.display()
    );
    world.deploy_ok(&Conf::demo("v1").tail(&routing));
    let addr = tls_addr(&world);
    wait_until(DEADLINE, "the certificate loaded", || {
        cert_of(&world, "shop.test").is_some_and(|c| c["issuer"] == "shop.test")
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Batches of 40 requests on one connection each, HTTP/2 and HTTP/1.1 in turn, until told to stop.
    let load = {
        let (stop, cert) = (stop.clone(), cert.clone());
        std::thread::spawn(move || {
            let mut codes = std::collections::BTreeMap::new();
            let url = format!("https://shop.test:{}/", addr.port());
            for round in 0..2_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let version = if round % 2 == 0 {
                    "--http2"
                } else {
                    "--http1.1"
                };
                let out = Command::new("curl")
                    .args(["-s", "--max-time", "30", version])
                    .args(["-w", "%{http_code}\\n", "--cacert"])
                    .arg(&cert)
                    .arg("--resolve")
                    .arg(format!("shop.test:{}:127.0.0.1", addr.port()))
                    .args((0..40).flat_map(|_| ["-o", "/dev/null", url.as_str()]))
                    .output()
                    .unwrap();
                for code in String::from_utf8_lossy(&out.stdout).lines() {
                    *codes.entry(code.to_string()).or_insert(0u64) += 1;
                }
            }
            codes
        })
    };
    world.deploy_ok(&Conf::demo("v2").tail(&routing));
    world.slipway(&["rollback"]).ok();
    world.settled();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let codes = load.join().unwrap();
    let total: u64 = codes.values().sum();
    assert!(total >= 80, "the load ran: {codes:?}");
    assert_eq!(
        codes.keys().collect::<Vec<_>>(),
        ["200"],
        "every request answered 200: {codes:?}"
    );
}

#[test]
fn an_acme_server_answering_garbage_is_reported_and_serving_goes_on() {
    // A "CA" that answers every request with a 200 and a body that is not JSON.
    let ca = TcpListener::bind("127.0.0.1:0").unwrap();
    let directory = format!("http://{}/dir", ca.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in ca.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\ngarbage",
            );
        }
    });
    let world = World::with_daemon_args(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--acme-directory",
        &directory,
    ]);
    world.deploy_ok(&Conf::demo("v1").tail("[routing]\nhosts = [\"shop.test\"]\ntls = \"auto\"\n"));
    let failed = wait_for(DEADLINE, "the CA's garbage reported", || {
        cert_of(&world, "shop.test").filter(|c| c["last_error"].is_string())
    });
    assert!(
        failed["last_error"].as_str().unwrap().contains("CA"),
        "{failed}"
    );
    assert!(
        failed["next_renewal"].is_u64(),
        "a retry is scheduled: {failed}"
    );
    let plain = support::http::get(world.daemon.proxy, "/", &[("Host", "shop.test")]).unwrap();
    assert_eq!(plain.body.trim(), "hello from v1");
}

/// `slipway upgrade` hands the HTTPS listener over too: the same address serves the same
/// certificate from the new daemon, over HTTP/2.
#[test]
fn an_upgrade_hands_over_the_https_listener() {
    let mut world = World::with_daemon_args(&["--tls-listen", "127.0.0.1:0"]);
    let dir = world.root().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&dir, "shop", &["shop.test"]);
    let routing = format!(
        "[routing]\nhosts = [\"shop.test\"]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        cert.display(),
        key.display()
    );
    world.deploy_ok(&Conf::demo("v1").tail(&routing));
    let addr = tls_addr(&world);
    wait_until(DEADLINE, "the certificate loaded", || {
        cert_of(&world, "shop.test").is_some_and(|c| c["issuer"] == "shop.test")
    });
    let answer = world.slipway(&["upgrade", "--json"]).ok().json();
    let pid = answer["pid"].as_u64().expect("new pid") as u32;
    world.daemon.upgraded_to(pid);
    assert_eq!(tls_addr(&world), addr, "the same listener");
    let h2 = curl(addr, "shop.test", &cert, &["--http2"], "/");
    assert_eq!(
        (h2.body.as_str(), h2.version.as_str()),
        ("hello from v1", "2"),
        "{h2:?}"
    );
}

/// The operator's `ask` endpoint for on-demand TLS: approves `yes.test`, refuses every other name,
/// and counts the questions per name.
struct Ask {
    url: String,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Ask {
    fn start() -> Ask {
        use std::io::{BufRead, BufReader, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        // Serves until the test process ends; it only ever answers the daemon.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let domain = line
                    .split_once("domain=")
                    .map(|(_, rest)| rest.split([' ', '&']).next().unwrap_or("").to_owned())
                    .unwrap_or_default();
                log.lock().unwrap().push(domain.clone());
                let status = if domain == "yes.test" {
                    "200 OK"
                } else {
                    "403 Forbidden"
                };
                let mut stream = &stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Ask { url, asked }
    }

    fn times_asked(&self, domain: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|d| *d == domain)
            .count()
    }
}

#[test]
fn on_demand_tls_issues_during_the_handshake_only_for_names_the_ask_url_approves() {
    let dir = tempfile::tempdir().unwrap();
    let api_root = dir.path().join("pebble-api.pem");
    let directory_port = free_port();
    let directory = format!("https://127.0.0.1:{directory_port}/dir");
    let ask = Ask::start();
    let world = World::with_daemon_args(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--acme-email",
        "ops@shop.test",
        "--acme-directory",
        &directory,
        "--acme-ca-root",
        api_root.to_str().unwrap(),
        "--on-demand-ask",
        &ask.url,
    ]);
    let addr = tls_addr(&world);
    let pebble = Pebble::start_at(
        dir.path(),
        directory_port,
        world.daemon.proxy.port(),
        addr.port(),
        3600,
        &[],
    );
    // No app lists yes.test: the app without hosts takes every name.
    world.deploy_ok(&Conf::demo("v1"));
    let root = pebble.issuing_root(dir.path());

    // The first handshake waits while the certificate is made, then goes on with it.
    let first = curl(addr, "yes.test", &root, &["--http2"], "/");
    assert_eq!(
        (first.body.as_str(), first.version.as_str()),
        ("hello from v1", "2"),
        "{first:?}"
    );
    let listed = cert_of(&world, "yes.test").expect("yes.test in `slipway certs`");
    assert!(
        listed["issuer"].as_str().unwrap().contains("Pebble"),
        "{listed}"
    );
    assert!(world.daemon.state.join("tls").join("yes.test.pem").exists());
    let again = curl(addr, "yes.test", &root, &["--http1.1"], "/");
    assert_eq!(again.body, "hello from v1", "{again:?}");
    assert_eq!(
        ask.times_asked("yes.test"),
        1,
        "asked once, then the certificate answers"
    );

    // A name the ask URL refuses gets no certificate; asking again within a minute is not repeated.
    for _ in 0..2 {
        let refused = curl(addr, "no.test", &root, &["--http2"], "/");
        assert!(
            !refused.ok,
            "no certificate for a refused name: {refused:?}"
        );
    }
    assert_eq!(ask.times_asked("no.test"), 1, "a refusal is remembered");
    assert!(cert_of(&world, "no.test").is_none());
    // And nothing else stopped.
    assert_eq!(
        curl(addr, "yes.test", &root, &["--http2"], "/").body,
        "hello from v1"
    );
}
