//! The relay over io_uring: one thread, one ring. Each connection has exactly one operation in flight
//! (accept → receive the request → send it to the backend → receive the response → send it to the
//! client → ...), and one `io_uring_enter` submits every operation the last batch of completions made
//! and waits for the next: under load, many connections' steps share one system call, where epoll
//! needs one per read and per write and one more per wait.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use io_uring::{IoUring, opcode, squeue, types};

use crate::frame::{request_end, response_end};

/// Submission queue entries; also the most connections served at once.
const RING: u32 = 4096;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Accept = 0,
    ReadRequest = 1,
    SendRequest = 2,
    ReadResponse = 3,
    SendResponse = 4,
}

impl Step {
    fn of(user_data: u64) -> Step {
        match user_data & 7 {
            0 => Step::Accept,
            1 => Step::ReadRequest,
            2 => Step::SendRequest,
            3 => Step::ReadResponse,
            _ => Step::SendResponse,
        }
    }
}

/// A client connection, its backend connection and their buffers (which stay put while the kernel
/// reads or writes them: the `Vec`s' heap storage never moves while an operation is in flight).
struct Conn {
    client: TcpStream,
    backend: TcpStream,
    request: Vec<u8>,
    requested: usize,
    response: Vec<u8>,
    responded: usize,
    /// The exchange's end in `request` (while sending it) or in `response` (while sending that).
    end: usize,
    /// How much of it was sent.
    sent: usize,
}

/// `tuned`: the ring set up for one thread that waits for its completions (single issuer, task work
/// deferred to the wait, no interrupting wake-ups), the setup io_uring's authors advise for servers.
pub fn run(listen: SocketAddr, backend: SocketAddr, tuned: bool) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let mut ring = if tuned {
        IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .build(RING)?
    } else {
        IoUring::new(RING)?
    };
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut queue: Vec<squeue::Entry> = vec![accept(listener.as_raw_fd())];
    let mut completions: Vec<(u64, i32)> = Vec::with_capacity(RING as usize);
    loop {
        {
            let mut submission = ring.submission();
            for entry in queue.drain(..) {
                // SAFETY: every buffer an entry points into lives in `conns` until its completion.
                unsafe { submission.push(&entry) }.map_err(|_| io::Error::other("ring full"))?;
            }
        }
        ring.submit_and_wait(1)?;
        completions.clear();
        completions.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for &(user_data, result) in &completions {
            let step = Step::of(user_data);
            if step == Step::Accept {
                queue.push(accept(listener.as_raw_fd()));
                if result < 0 {
                    continue;
                }
                // SAFETY: the kernel gave us this new descriptor.
                let client = unsafe { TcpStream::from_raw_fd(result) };
                let Ok(instance) = TcpStream::connect(backend) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = instance.set_nodelay(true);
                let conn = Conn {
                    client,
                    backend: instance,
                    request: vec![0; 16 * 1024],
                    requested: 0,
                    response: vec![0; 64 * 1024],
                    responded: 0,
                    end: 0,
                    sent: 0,
                };
                let slot = match free.pop() {
                    Some(slot) => {
                        conns[slot] = Some(conn);
                        slot
                    }
                    None => {
                        conns.push(Some(conn));
                        conns.len() - 1
                    }
                };
                queue.push(receive(
                    slot,
                    conns[slot].as_mut().expect("just put"),
                    Step::ReadRequest,
                ));
                continue;
            }
            let slot = (user_data >> 3) as usize;
            let Some(conn) = conns[slot].as_mut() else {
                continue;
            };
            match advance(slot, conn, step, result) {
                Some(entry) => queue.push(entry),
                None => {
                    conns[slot] = None;
                    free.push(slot);
                }
            }
        }
    }
}

/// The connection's next operation after `step` completed with `result`; `None`: it is done (closed or
/// failed).
fn advance(slot: usize, conn: &mut Conn, step: Step, result: i32) -> Option<squeue::Entry> {
    if result <= 0 {
        return None;
    }
    let n = result as usize;
    match step {
        Step::Accept => None,
        Step::ReadRequest => {
            conn.requested += n;
            next_request(slot, conn)
        }
        Step::SendRequest => {
            conn.sent += n;
            if conn.sent < conn.end {
                return Some(send(slot, conn, Step::SendRequest));
            }
            conn.request.copy_within(conn.end..conn.requested, 0);
            conn.requested -= conn.end;
            Some(receive(slot, conn, Step::ReadResponse))
        }
        Step::ReadResponse => {
            conn.responded += n;
            match response_end(&conn.response[..conn.responded]) {
                Some(end) => {
                    (conn.end, conn.sent) = (end, 0);
                    Some(send(slot, conn, Step::SendResponse))
                }
                None if conn.responded == conn.response.len() => None,
                None => Some(receive(slot, conn, Step::ReadResponse)),
            }
        }
        Step::SendResponse => {
            conn.sent += n;
            if conn.sent < conn.end {
                return Some(send(slot, conn, Step::SendResponse));
            }
            conn.response.copy_within(conn.end..conn.responded, 0);
            conn.responded -= conn.end;
            next_request(slot, conn)
        }
    }
}

/// Sends the request when all of it is here, else reads more.
fn next_request(slot: usize, conn: &mut Conn) -> Option<squeue::Entry> {
    match request_end(&conn.request[..conn.requested]) {
        Some(end) => {
            (conn.end, conn.sent) = (end, 0);
            Some(send(slot, conn, Step::SendRequest))
        }
        None if conn.requested == conn.request.len() => None,
        None => Some(receive(slot, conn, Step::ReadRequest)),
    }
}

fn accept(listener: RawFd) -> squeue::Entry {
    opcode::Accept::new(
        types::Fd(listener),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
    .build()
    .user_data(Step::Accept as u64)
}

fn tag(slot: usize, step: Step) -> u64 {
    ((slot as u64) << 3) | step as u64
}

/// Receives more of the request (from the client) or of the response (from the backend).
fn receive(slot: usize, conn: &mut Conn, step: Step) -> squeue::Entry {
    let (fd, spare) = match step {
        Step::ReadRequest => (conn.client.as_raw_fd(), &mut conn.request[conn.requested..]),
        _ => (
            conn.backend.as_raw_fd(),
            &mut conn.response[conn.responded..],
        ),
    };
    opcode::Recv::new(types::Fd(fd), spare.as_mut_ptr(), spare.len() as u32)
        .build()
        .user_data(tag(slot, step))
}

/// Sends what is left of the request (to the backend) or of the response (to the client).
fn send(slot: usize, conn: &Conn, step: Step) -> squeue::Entry {
    let (fd, bytes) = match step {
        Step::SendRequest => (conn.backend.as_raw_fd(), &conn.request[conn.sent..conn.end]),
        _ => (conn.client.as_raw_fd(), &conn.response[conn.sent..conn.end]),
    };
    opcode::Send::new(types::Fd(fd), bytes.as_ptr(), bytes.len() as u32)
        .build()
        .user_data(tag(slot, step))
}
