//! Integration tests: they drive the real `kiln` binary on real Dockerfiles.
//! They need root (or a machine where unprivileged user namespaces and overlayfs
//! work, as CI's Debian 12 machines do) and busybox-static for the base image.

mod it;
