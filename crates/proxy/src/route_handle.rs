//! Publishing route tables: an atomic swap that the controller can wait on.
//!
//! Requests read the table through an `arc-swap` guard, which they hold only until they have counted their
//! chosen backend's `in_flight`. `ArcSwap::swap` turns every outstanding guard into a real reference to the
//! old table, so once the old table's reference count drops to one (ours), no request is still choosing from
//! it: a backend absent from the new table can only see its `in_flight` go down from then on. That is what
//! lets the controller publish, then drain, then stop an instance without failing a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::flag_variants::FlagVariants;
use crate::held::Held;
use crate::route_table::{CompiledTable, RouteTable};

/// A cheap, cloneable handle to the proxy's current route table.
#[derive(Clone)]
pub struct RouteHandle {
    pub(crate) inner: Arc<ArcSwap<CompiledTable>>,
    /// Requests waiting for a table in which their app can serve them.
    pub(crate) held: Arc<Held>,
    /// Answers counted per flag variant (the apps' `Slipway-Flags` headers).
    pub(crate) flag_variants: Arc<FlagVariants>,
    /// Apps compiled by every publish so far (see `compiled_apps`).
    compiled: Arc<AtomicU64>,
}

impl std::fmt::Debug for RouteHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteHandle")
            .field("apps", &self.current().apps.len())
            .finish()
    }
}

impl RouteHandle {
    pub(crate) fn new(table: RouteTable) -> RouteHandle {
        RouteHandle {
            inner: Arc::new(ArcSwap::from_pointee(CompiledTable::compile(
                Arc::new(table),
                None,
            ))),
            held: Arc::new(Held::default()),
            flag_variants: Arc::new(FlagVariants::default()),
            compiled: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The answers counted per flag variant, for flag ramps judged on vs off.
    pub fn flag_variants(&self) -> &FlagVariants {
        &self.flag_variants
    }

    /// Swaps in a new table. Resolves once no request is still choosing a backend from the previous table
    /// (so after it returns, a backend absent from `table` gets no new requests, and its `in_flight` counter
    /// only goes down).
    ///
    /// Only the apps whose route is not the previous table's `Arc` are compiled; the others keep their
    /// compiled form.
    pub async fn publish(&self, table: RouteTable) {
        let compiled = {
            // Dropped before the swap: the wait below counts the old table's references.
            let current = self.inner.load();
            CompiledTable::compile(Arc::new(table), Some(&**current))
        };
        self.compiled
            .fetch_add(compiled.compiled as u64, Ordering::Relaxed);
        let old = self.inner.swap(Arc::new(compiled));
        self.held.published();
        // Requests hold their guard only for a synchronous lookup, so this loop is short: yield first (on a
        // current-thread runtime the request may be waiting for us), then back off to short sleeps.
        let mut spins = 0u32;
        while Arc::strong_count(&old) > 1 {
            if spins < 64 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            spins = spins.saturating_add(1);
        }
        // Pairs with the release decrement of the last guard's drop, so its backend count is visible.
        fence(Ordering::Acquire);
    }

    /// How many apps every `publish` so far has compiled, in all: an update's work is the apps it
    /// changed, which tests check by this count.
    pub fn compiled_apps(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }

    /// The table currently in force (holding it does not delay `publish`).
    pub fn current(&self) -> Arc<RouteTable> {
        Arc::clone(&self.inner.load().table)
    }
}
