//! COPY: a Copy vertex from the context or, with `--from`, from an earlier
//! stage or an image (which then becomes a vertex of its own).

use kiln_solver::Digest;

use super::stage::StageState;
use super::{clean, join, Halt, LowerError, Lowering};
use crate::error::{Error, Location};
use crate::instructions::{Command, Copy, Word};
use crate::ops::{CopyFrom, CopyOp, Op};

impl Lowering<'_> {
    /// Lower a COPY; halts (changing nothing) when `--from` names a stage not
    /// lowered yet.
    pub(super) fn copy(&mut self, index: usize, st: &mut StageState, cmd: &Command, copy: &Copy) -> Result<(), Halt> {
        let get = |n: &str| st.get(n);
        let flag = |w: &Option<Word>| w.as_ref().map(|w| self.expand(w, &get)).transpose();
        let (from, chown, chmod) = (flag(&copy.from)?, flag(&copy.chown)?, flag(&copy.chmod)?);
        if let Some(mode) = &chmod {
            let octal = !mode.is_empty() && mode.len() <= 4 && mode.chars().all(|c| ('0'..='7').contains(&c));
            if !octal {
                let at = copy.chmod.as_ref().map_or(cmd.location, |w| w.location);
                return Err(Error::at(at, LowerError::Chmod(mode.clone())).into());
            }
        }
        let sources = copy.sources.iter().map(|w| self.expand(w, &get)).collect::<Result<Vec<_>, _>>()?;
        let dest = self.expand(&copy.dest, &get)?;
        for (word, value) in copy.sources.iter().zip(&sources).chain([(&copy.dest, &dest)]) {
            if value.is_empty() {
                let what = if word == &copy.dest { "COPY destination" } else { "COPY source" };
                return Err(Error::at(word.location, LowerError::EmptyValue(what)).into());
            }
        }
        // Several sources onto a destination without a trailing `/` are no
        // error: BuildKit copies each in turn (the engine does too).
        let is_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
        let mut abs = clean(&join(&st.workdir(), &dest));
        if is_dir && abs != "/" {
            abs.push('/');
        }

        let mut inputs = vec![st.vertex.clone()];
        if let Some(from) = &from {
            inputs.push(self.copy_source(index, from, cmd.location)?);
        }
        let mut shown = String::from("COPY ");
        for (flag, value) in [("from", &from), ("chown", &chown), ("chmod", &chmod)] {
            if let Some(v) = value {
                shown += &format!("--{flag}={v} ");
            }
        }
        shown += &format!("{} {dest}", sources.join(" "));
        let op = Op::Copy(CopyOp {
            from: if from.is_some() { CopyFrom::Input } else { CopyFrom::Context },
            sources,
            dest: abs,
            chown,
            chmod,
            unpack: false,
            checksum: None,
            link: false,
            parents: false,
            exclude: Vec::new(),
        });
        let name = st.name(&cmd.text);
        st.vertex = self.add(op, inputs, name, cmd.location)?;
        st.history(shown, false);
        Ok(())
    }

    /// The vertex `COPY --from=<from>` reads: an earlier stage (by name or index)
    /// or an image.
    fn copy_source(&mut self, index: usize, from: &str, at: Location) -> Result<Digest, Halt> {
        match self.find_stage(from) {
            Some(i) if i == index => Err(Error::at(at, LowerError::CopyFromItself(from.to_owned())).into()),
            Some(i) if i > index => Err(Error::at(at, LowerError::CopyFromLater(from.to_owned())).into()),
            Some(i) => Ok(self.stage(i)?.vertex.clone()),
            None => {
                let image = self
                    .resolve(from, at)?
                    .ok_or_else(|| Error::at(at, LowerError::CopyFromNotFound(from.to_owned())))?;
                let name = format!("image {}", image.name);
                let op = Op::Image { name: image.name, digest: image.digest };
                Ok(self.add(op, vec![], name, at)?)
            }
        }
    }
}
