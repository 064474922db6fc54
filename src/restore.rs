//! Restoring a verified backup (being written).
