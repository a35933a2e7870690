//! kiln as a library: the call `kiln build` makes, made by another program
//! (this test binary), which is not in a mount namespace of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kiln::build::{Dockerfile, Progress};
use kiln::store::Store;
use kiln::{BuildError, BuildRequest};
use kiln_solver::Event;

use super::harness::{busybox_tar, Kiln, KILN};

/// Counts what a build reports.
#[derive(Default)]
struct Counter {
    events: AtomicUsize,
    named: AtomicUsize,
}

impl Progress for Counter {
    fn event(&self, _event: &Event) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    fn named(&self, _name: &str) {
        self.named.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_program_builds_with_kiln_build_and_the_command_sees_the_image() {
    let k = Kiln::empty();
    let store = Store::open(&k.root()).unwrap();
    let tar = std::fs::File::open(busybox_tar()).unwrap();
    kiln::image_io::import_rootfs(&store, std::io::BufReader::new(tar), "busybox", "test").unwrap();
    k.write("msg.txt", "from the library\n");

    let progress = Arc::new(Counter::default());
    let mut request = BuildRequest::new(k.ctx());
    request.dockerfile = Dockerfile::Text {
        name: "inline".into(),
        text: "FROM busybox\nARG WORD\nCOPY msg.txt /msg\nRUN echo $WORD >> /msg\nCMD [\"cat\", \"/msg\"]\n".into(),
    };
    request.build_args.insert("WORD".into(), "and its RUN".into());
    request.tags = vec!["lib:v1".into()];
    request.progress = progress.clone();
    // This process is the test binary: the sandbox must re-execute kiln itself.
    request.sandbox_exe = Some(KILN.into());
    let built = kiln::build(&store, request).unwrap();

    assert_eq!(built.tags, ["lib:v1"]);
    assert!(progress.events.load(Ordering::Relaxed) >= 4, "steps started and finished");
    assert_eq!(progress.named.load(Ordering::Relaxed), 1);
    assert_eq!(k.inspect("lib:v1")["Id"], built.id.to_string());
    assert_eq!(k.cmd(&["run", "lib:v1"]).ok().stdout, "from the library\nand its RUN\n");
    // Its overlays are unmounted though no private namespace takes them away.
    k.assert_clean();

    // A failing step is named by its line in the Dockerfile, as `kiln build` shows it.
    let mut request = BuildRequest::new(k.ctx());
    request.dockerfile = Dockerfile::Text { name: "inline".into(), text: "FROM busybox\nRUN exit 3\n".into() };
    request.sandbox_exe = Some(KILN.into());
    match kiln::build(&store, request) {
        Err(e @ BuildError::Solve { .. }) => assert_eq!(e.to_string(), "inline:2: build failed"),
        other => panic!("{other:?}"),
    }
    k.assert_clean();
}
