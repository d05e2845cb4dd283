//! The generated clients under `clients/`, each run against the real service: the service
//! in-process on a fresh database (testkit), a real receiver on 127.0.0.1, and the client's own
//! test runner as a child process, whose success is the test's.

mod go;
