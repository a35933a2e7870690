mod bad_input;
mod build;
mod cache;
mod harness;
mod interop;
mod rootless;
mod run;
