//! Logging in over TCP, end to end: wrong tokens (API requests and dashboard logins count together)
//! lock the client's address out with 429 and `Retry-After`, each further failure doubling the
//! lock-out, a success starting afresh; other addresses and the local socket are not affected; the
//! refusals are logged with the address, and no token appears in the log or in any answer. A dashboard
//! login always issues a new session id and ends the one the browser had.

mod support;

use std::net::{SocketAddr, TcpStream};
use support::http::{Response, get, request, request_on};
use support::ui;
use support::{DEADLINE, World, wait_for, wait_until};

/// A TCP connection to `to` from the local address `from` (any 127.x.y.z is this host on Linux).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = to else {
        panic!("the API listens on IPv4 here")
    };
    let sockaddr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        // Network byte order is the octets in order.
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; the addresses live on the stack
    // for the duration of each call, and the descriptor is handed to TcpStream (which closes it).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(from, 0);
        let bound = libc::bind(fd, (&raw const local).cast(), len);
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        let remote = sockaddr(to.ip().octets(), to.port());
        let connected = libc::connect(fd, (&raw const remote).cast(), len);
        assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

fn apps(api: SocketAddr, token: &str) -> Response {
    let bearer = format!("Bearer {token}");
    request(
        api,
        "GET",
        "/v1/apps",
        &[("Authorization", &bearer)],
        "",
        true,
    )
    .expect("GET /v1/apps")
}

#[test]
fn wrong_tokens_lock_an_address_out_with_back_off_and_a_success_starts_afresh() {
    let world = World::with_daemon_args(&[
        "--api",
        "127.0.0.1:0",
        "--auth-failures",
        "3",
        "--auth-lockout",
        // Long enough that the two requests checking the lock-out surely come while it lasts.
        "5s",
    ]);
    let api = world.api_addr();
    let token = world.create_token("ops", "admin");
    let wrong = |n: u32| format!("slw_wrong-guess-{n:04}");
    let mut answers = Vec::new();
    assert_eq!(apps(api, &token).status, 200);

    // Three failures, through both doors, lock the address out.
    let first = apps(api, &wrong(1));
    assert_eq!(first.status, 401, "{first:?}");
    let login = ui::post_login(api, &wrong(2), None);
    assert_eq!(login.status, 401, "{login:?}");
    let locked = apps(api, &wrong(3));
    assert_eq!(locked.status, 429, "{locked:?}");
    assert_eq!(locked.header("retry-after"), Some("5"), "{locked:?}");
    assert!(locked.body.contains("try again in 5 s"), "{locked:?}");
    // While locked out, nothing it presents is looked at: not a good token, not a login.
    let good = apps(api, &token);
    assert_eq!(good.status, 429, "{good:?}");
    let login_locked = ui::post_login(api, &token, None);
    assert_eq!(login_locked.status, 429, "{login_locked:?}");
    assert!(login_locked.header("retry-after").is_some());
    assert!(
        login_locked.body.contains("Too many failed logins"),
        "{}",
        login_locked.body
    );
    assert!(ui::session_id(&login_locked).is_none());
    answers.extend([first, login, locked, good, login_locked]);

    // The local socket needs no token and is never locked out; another address is not either.
    world.slipway(&["token", "list"]).ok();
    let bearer = format!("Bearer {token}");
    let elsewhere = request_on(
        connect_from([127, 0, 0, 2], api),
        "GET",
        "/v1/apps",
        &[("Authorization", &bearer)],
        "",
        true,
    )
    .unwrap();
    assert_eq!(elsewhere.status, 200, "{elsewhere:?}");

    // Once the lock-out is over, the next failure locks the address out again at once, twice as long.
    let mut n = 100;
    let doubled = wait_for(DEADLINE, "the second, doubled lock-out", || {
        n += 1;
        let answer = apps(api, &wrong(n));
        assert_eq!(
            answer.status, 429,
            "no free attempts after a lock-out: {answer:?}"
        );
        (answer.header("retry-after") == Some("10")).then_some(answer)
    });
    answers.push(doubled);

    // A success (once allowed) forgets the address: three failures again, and the short lock-out.
    wait_until(DEADLINE, "the good token to be let in again", || {
        apps(api, &token).status == 200
    });
    for n in [201, 202] {
        let answer = apps(api, &wrong(n));
        assert_eq!(answer.status, 401, "{answer:?}");
        answers.push(answer);
    }
    let again = apps(api, &wrong(203));
    assert_eq!(again.status, 429, "{again:?}");
    assert_eq!(again.header("retry-after"), Some("5"), "{again:?}");
    answers.push(again);

    // Logged with the address and the door; no token, right or wrong, in the log or in an answer.
    let log = world.daemon.log_text();
    assert!(log.contains("refused a token that is not valid"), "{log}");
    assert!(log.contains(r#""client":"127.0.0.1""#), "{log}");
    assert!(log.contains("dashboard login"), "{log}");
    assert!(log.contains("127.0.0.1 is locked out for 5 s"), "{log}");
    assert!(log.contains("127.0.0.1 is locked out for 10 s"), "{log}");
    for secret in [token.as_str(), "slw_wrong-guess"] {
        assert!(!log.contains(secret), "a token in the daemon log");
        for a in &answers {
            assert!(!a.body.contains(secret), "a token in an answer: {a:?}");
        }
    }
}

#[test]
fn a_login_always_issues_a_new_session_id_and_ends_the_old_one() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = world.api_addr();
    let token = world.create_token("alice", "deployer");
    let page = |cookie: &str| get(api, "/ui/", &[("Cookie", cookie)]).expect("GET /ui/");

    let before = ui::login(api, &token);
    assert_eq!(page(&before.cookie()).status, 200);
    // The same browser logs in again (it sends the cookie it has): a new id, and the old one is dead.
    let again = ui::post_login(api, &token, Some(&before.cookie()));
    assert_eq!(again.status, 303, "{again:?}");
    let after = ui::session_id(&again).expect("a new session cookie");
    assert_ne!(after, before.id);
    assert!(
        ui::to_login(&page(&before.cookie())),
        "the id from before the login still works"
    );
    let after_cookie = format!("{}={after}", ui::COOKIE);
    assert_eq!(page(&after_cookie).status, 200);

    // An id the client chose (a planted cookie) is never adopted: the login issues its own.
    let planted = format!("{}={}", ui::COOKIE, "ab".repeat(32));
    let answer = ui::post_login(api, &token, Some(&planted));
    let issued = ui::session_id(&answer).expect("a session cookie");
    assert_ne!(issued, "ab".repeat(32));
    assert!(ui::to_login(&page(&planted)));
    assert_eq!(page(&format!("{}={issued}", ui::COOKIE)).status, 200);
    assert!(
        !world.daemon.log_text().contains(&token),
        "the token in the daemon log"
    );
}
