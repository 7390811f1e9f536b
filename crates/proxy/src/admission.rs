//! How many client connections the proxy holds: in total and per client address. A connection over
//! either limit is refused (503) before any of its bytes are read, so one client cannot take every slot
//! or file descriptor, and the total stays under what the machine can hold.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The connections open now.
pub(crate) struct Admission {
    max_total: usize,
    max_per_client: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    Total,
    Client,
}

/// One admitted connection; its slot is given back on drop.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    client: IpAddr,
}

impl Admission {
    pub(crate) fn new(max_total: usize, max_per_client: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_total,
            max_per_client,
            open: Mutex::new(Open::default()),
        })
    }

    /// Admits a connection from `client`, or says which limit it is over. (A lock per connection, not per
    /// request: the cost is in the noise next to accepting one.)
    pub(crate) fn admit(self: &Arc<Admission>, client: IpAddr) -> Result<Ticket, Full> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max_total {
            return Err(Full::Total);
        }
        let from_client = open.by_client.entry(client).or_insert(0);
        if *from_client >= self.max_per_client {
            return Err(Full::Client);
        }
        *from_client += 1;
        open.total += 1;
        Ok(Ticket {
            admission: Arc::clone(self),
            client,
        })
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        self.open.lock().expect("open").total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_slots_come_back() {
        let admission = Admission::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let a1 = admission.admit(a).expect("first");
        let _a2 = admission.admit(a).expect("second");
        assert_eq!(admission.admit(a).err(), Some(Full::Client));
        let _b1 = admission.admit(b).expect("another client");
        assert_eq!(admission.admit(b).err(), Some(Full::Total));
        drop(a1);
        assert_eq!(admission.total(), 2);
        let _a3 = admission.admit(a).expect("a slot came back");
        assert_eq!(admission.open.lock().expect("open").by_client.len(), 2);
    }
}
