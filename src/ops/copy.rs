//! COPY: a new layer written straight from the selected files (see
//! [`crate::copy`]), the base mounted read-only only to resolve the destination.

use std::path::PathBuf;

use kiln_frontend::{CopyFrom, CopyOp};
use kiln_solver::{CacheKey, ExecContext};

use super::{Engine, EngineError, FsState};
use crate::copy::{self, CopyError, SourceRoot};
use crate::layer::LayerWriter;

impl Engine {
    pub(super) fn copy(&self, ctx: &ExecContext, op: &CopyOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let base = &inputs[0];
        let base_mount = (!base.layers.is_empty()).then(|| self.snapshots.mount(&base.layers, false)).transpose()?;
        let source_mount;
        let host = self.host_source(&op.from)?;
        let from = match op.from {
            CopyFrom::Context | CopyFrom::NamedContext(_) => Some(host.cloned().ok_or(EngineError::NoContext)?),
            CopyFrom::Input => {
                let src = inputs.get(1).cloned().unwrap_or_default();
                source_mount = self.snapshots.mount(&src.layers, false)?;
                Some(SourceRoot::Fs { root: source_mount.root.clone() })
            }
            CopyFrom::Inline(_) => None,
            ref other => return Err(EngineError::Unsupported(format!("COPY/ADD from {other:?}"))),
        };
        let planned = host.and_then(|h| self.planned(h));
        let mut writer = LayerWriter::with_snapshot_from(&self.store, self.donor(ctx.key()))?;
        let bytes = ctx.byte_progress();
        writer.report_bytes(move |n| bytes.report(n, None));
        writer.cancel_on(ctx.cancellation());
        let base_root = base_mount.as_ref().map(|m| m.root.as_path());
        let written = copy::write_layer(op, base_root, from.as_ref(), planned.as_deref(), writer.tar(), self.epoch)?;
        // The context (or a named one) was read once for the cache key and
        // once more for the layer: a file changed in between would store this
        // layer under a key that describes other files. (A stage or image is a
        // read-only mount, and no checksum goes into its key.) The unfinished
        // layer is dropped.
        if host.is_some() && ctx.content_checksum() != Some(&written) {
            return Err(CopyError::Changed.into());
        }
        let layer = writer.finish()?;
        Ok(base.with(layer))
    }

    /// The snapshot this step made when it last ran in this project (the
    /// explainer's last record of it), from which the new snapshot may take
    /// its unchanged big files: a one-file change in a big context then
    /// writes the layer's blob, not every byte twice.
    fn donor(&self, key: &CacheKey) -> Option<PathBuf> {
        let previous = self.explain.as_ref()?.previous_key(key)?;
        // This store's record only, left as recently used as it was: not a
        // hit, and never a reason to fetch from a --cache-from source or to
        // export it with --cache-to.
        let layer = crate::cache::LocalCache::new(&self.store).peek(&previous)?.layers.pop()?;
        let dir = self.store.snapshots_dir().join(layer.diff_id.hex());
        dir.is_dir().then_some(dir)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use kiln_frontend::{BuildOptions, ImageResolver, Op, ResolvedImage};
    use kiln_solver::{CacheKey, Cancellation, Digest, Executor, Solver};

    use super::*;
    use crate::context::dockerignore::DockerIgnore;
    use crate::store::Store;

    /// No base images: the builds here start from scratch.
    struct NoImages;

    impl ImageResolver for NoImages {
        fn resolve(&self, _: &str) -> Result<Option<ResolvedImage>, String> {
            Ok(None)
        }
    }

    /// The engine, with a hook run between the two reads of the context:
    /// right after the checksum for the cache key is taken.
    struct Hooked<F> {
        engine: Engine,
        between: F,
    }

    impl<F: Fn() + Send + Sync + 'static> Executor for Hooked<F> {
        type Op = Op;
        type Output = FsState;
        type Error = EngineError;

        fn content_checksum(&self, op: &Op) -> Result<Option<Digest>, EngineError> {
            let checksum = self.engine.content_checksum(op);
            if matches!(op, Op::Copy(_)) {
                (self.between)();
            }
            checksum
        }
        fn load(&self, key: &CacheKey, op: &Op, cancel: &Cancellation) -> Result<Option<FsState>, EngineError> {
            self.engine.load(key, op, cancel)
        }
        fn execute(&self, ctx: &ExecContext, op: &Op, inputs: &[FsState]) -> Result<FsState, EngineError> {
            self.engine.execute(ctx, op, inputs)
        }
        fn save(&self, key: &CacheKey, output: &FsState) -> Result<(), EngineError> {
            self.engine.save(key, output)
        }
    }

    /// Build `FROM scratch` + `COPY f /f` with `between` run between the
    /// checksum and the layer; the layer's content of `f`, or the error.
    fn build_copy(between: impl Fn(&std::path::Path) + Send + Sync + 'static) -> Result<Vec<u8>, String> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        fs::write(ctx.join("f"), "before").unwrap();
        let ignore = Arc::new(DockerIgnore::parse("", ".dockerignore").unwrap());
        let root = SourceRoot::Context { root: ctx.clone(), ignore };
        let engine = Engine::new(&store, Some(root)).unwrap();
        let hooked = Arc::new(Hooked { engine, between: move || between(&ctx) });
        let graph =
            kiln_frontend::build_graph("FROM scratch\nCOPY f /f\n", &BuildOptions::default(), &NoImages).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let fs = runtime
            .block_on(Solver::new(hooked, 1).use_cache(false).solve(&graph.graph, &graph.target))
            .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?;
        let blob = fs::File::open(store.blob_path(&fs.layers[0].digest)).unwrap();
        let mut tar = tar::Archive::new(blob);
        let mut entry = tar.entries().unwrap().map(Result::unwrap).find(|e| e.path().unwrap().ends_with("f")).unwrap();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        Ok(content)
    }

    #[test]
    fn a_context_file_changed_after_its_checksum_fails_the_copy() {
        assert_eq!(build_copy(|_| {}).unwrap(), b"before");
        for (case, change) in [
            ("content", (|ctx: &std::path::Path| fs::write(ctx.join("f"), "after!").unwrap()) as fn(&_)),
            ("size", |ctx| fs::write(ctx.join("f"), "longer than before").unwrap()),
            ("mode", |ctx| {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(ctx.join("f"), fs::Permissions::from_mode(0o600)).unwrap()
            }),
        ] {
            let err = build_copy(change).expect_err(case);
            assert!(err.contains("the build context changed while it was read"), "{case}: {err}");
            // A file's new bytes are caught as they are written, and named.
            assert_eq!(err.contains("the content of f no longer matches"), case != "mode", "{case}: {err}");
        }
    }
}
