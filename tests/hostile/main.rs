//! Hostile input: property tests over the validation of every request message, and one
//! end-to-end property test against the running service.
//!
//! - `webhooks`: CreateWebhook and UpdateWebhook fields (names, destinations, selections,
//!   functions, secrets, update masks);
//! - `events`: PublishEvent requests of all three kinds, against rules written out independently;
//! - `parsers`: ids, timestamps, page sizes, page tokens, durations, retry schedules, Retry-After;
//! - `service`: random requests to a real service on a fresh database (never INTERNAL, UNKNOWN or
//!   a dropped connection), and page tokens that cannot be replayed against other filters.
//!
//! The fuzz targets in `fuzz/` drive the same parsers with libFuzzer (not part of this suite).

mod events;
mod parsers;
mod service;
mod strategies;
mod webhooks;
