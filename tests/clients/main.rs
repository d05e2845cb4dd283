//! The client packages under `clients/` against the real service: each spawns the service on a
//! random port against its own fresh database and drives it through one language's client over
//! a real socket, with a real receiver on 127.0.0.1. One module per language.

mod rust;
