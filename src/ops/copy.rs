//! COPY: a new layer written straight from the selected files (see
//! [`crate::copy`]), the base mounted read-only only to resolve the destination.

use kiln_frontend::{CopyFrom, CopyOp};

use super::{Engine, EngineError, FsState};
use crate::copy::{self, SourceRoot};
use crate::layer::LayerWriter;

impl Engine {
    pub(super) fn copy(&self, op: &CopyOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let base = &inputs[0];
        let base_mount = (!base.layers.is_empty()).then(|| self.snapshots.mount(&base.layers, false)).transpose()?;
        let source_mount;
        let from = match op.from {
            CopyFrom::Context => self.context()?.clone(),
            CopyFrom::Input => {
                let src = inputs.get(1).cloned().unwrap_or_default();
                source_mount = self.snapshots.mount(&src.layers, false)?;
                SourceRoot::Fs { root: source_mount.root.clone() }
            }
        };
        let mut writer = LayerWriter::new(&self.store)?;
        copy::write_layer(op, base_mount.as_ref().map(|m| m.root.as_path()), &from, writer.tar())?;
        let layer = writer.finish()?;
        Ok(base.with(layer))
    }
}
