//! The backup store: pg_dump runner with streamed SHA-256, metadata,
//! listing, verification and retention (not built yet).
