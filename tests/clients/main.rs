//! The client packages under `clients/`, each run by its own test runner against the real
//! service: the service in-process on a fresh database (testkit), a real receiver on 127.0.0.1,
//! and the client's tests as a child process, whose success is the test's. One module per
//! language.

mod go;
mod python;
mod typescript;
