//! The security group: what a hostile Dockerfile, context, base image or
//! archive must never be able to do to the host. One file per escape class;
//! each test names the class it holds shut (see docs/ARCHITECTURE.md, "Threat
//! model").

mod archives;
mod cleanup;
mod devices;
mod fds;
mod limits;
mod messages;
mod mounts;
mod names;
mod sandbox;
mod seccomp;
mod store;
mod terminal;
mod whiteouts;
