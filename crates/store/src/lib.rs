//! Durable state: releases, rollouts, events and locks in SQLite; the content-addressed artifact store.
