//! The client packages of `clients/`, each run by its own test runner against the real service
//! (in-process, on a fresh database, with a real receiver): one module per language.

mod python;
