//! The client packages under `clients/`, each against the real service: the service on a
//! random port against its own fresh database (testkit), a real receiver on 127.0.0.1, and the
//! client over a real socket: the Rust crate in-process, the others through their own test
//! runner as a child process, whose success is the test's. One module per language.

mod go;
mod python;
mod rust;
mod typescript;
