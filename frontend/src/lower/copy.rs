//! COPY and ADD: Copy vertices from the context or, with `--from`, from a
//! named context, an earlier stage or an image (which then becomes a vertex
//! of its own). ADD's
//! URL and git sources get a vertex each kind, chained after the local ones.

use kiln_solver::Digest;

use super::add::{self, Kind};
use super::stage::StageState;
use super::{chmod, clean, join, Halt, LowerError, Lowering};
use crate::error::{Error, Location};
use crate::instructions::{Command, Copy, Word};
use crate::ops::{CopyFrom, CopyOp, InlineFile, Op};
use crate::options::NamedContext;
use crate::redact;

impl Lowering<'_> {
    /// Lower a COPY or ADD; halts (changing nothing) when `--from` names a
    /// stage not lowered yet.
    pub(super) fn copy(&mut self, index: usize, st: &mut StageState, cmd: &Command, copy: &Copy) -> Result<(), Halt> {
        let keyword = if copy.add { "ADD" } else { "COPY" };
        let get = |n: &str| st.get(n);
        let flag = |w: &Option<Word>| w.as_ref().map(|w| self.expand(w, &get)).transpose();
        // BuildKit ties --from to a stage before it expands anything, so a
        // variable there names no stage and no valid image: it refuses it.
        if let Some(w) = copy.from.as_ref().filter(|w| w.raw.contains('$')) {
            return Err(Error::at(w.location, LowerError::FromVariable(w.raw.clone())).into());
        }
        let (from_ref, chown, chmod) = (flag(&copy.from)?, flag(&copy.chown)?, flag(&copy.chmod)?);
        let checksum = flag(&copy.checksum)?;
        if let Some(mode) = &chmod {
            if !chmod::is_valid(mode) {
                let at = copy.chmod.as_ref().map_or(cmd.location, |w| w.location);
                return Err(Error::at(at, LowerError::Chmod(mode.clone())).into());
            }
        }
        let exclude = copy.exclude.iter().map(|w| self.expand(w, &get)).collect::<Result<Vec<_>, _>>()?;
        let sources = copy.sources.iter().map(|w| self.expand(w, &get)).collect::<Result<Vec<_>, _>>()?;
        let dest = self.expand(&copy.dest, &get)?;
        let mut inline = Vec::new();
        for doc in &copy.inline {
            let content = if doc.expand {
                super::heredoc::expand(self.lexer, &doc.content, &get).map_err(|e| Error::at(doc.location, e))?
            } else {
                doc.content.clone()
            };
            inline.push(InlineFile { name: doc.name.clone(), content });
        }
        for (word, value) in copy.sources.iter().zip(&sources).chain([(&copy.dest, &dest)]) {
            if value.is_empty() {
                let what = match (copy.add, word == &copy.dest) {
                    (false, true) => "COPY destination",
                    (false, false) => "COPY source",
                    (true, true) => "ADD destination",
                    (true, false) => "ADD source",
                };
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

        let source_input = match &from_ref {
            Some(from) => Some(self.copy_source(index, from, cmd.location)?),
            None => None,
        };
        if let (Some(w), true) = (&copy.checksum, sources.len() + inline.len() > 1) {
            return Err(Error::at(w.location, LowerError::ChecksumSources).into());
        }
        // ADD's sources by kind (COPY's are all local), each group one vertex.
        let mut groups: Vec<(Kind, Vec<String>)> = Vec::new();
        for (word, source) in copy.sources.iter().zip(sources) {
            let kind = add::kind(&source);
            if !copy.add && kind != Kind::Local {
                let shown = redact::credentials(&source);
                let e = if kind == Kind::Url { LowerError::CopyUrl(shown) } else { LowerError::CopyGit(shown) };
                return Err(Error::at(word.location, e).into());
            }
            if let Some(sum) = &checksum {
                if kind == Kind::Local {
                    return Err(Error::at(word.location, LowerError::ChecksumLocal(source)).into());
                }
                if !add::checksum_ok(kind, sum) {
                    let at = copy.checksum.as_ref().map_or(cmd.location, |w| w.location);
                    let e = if kind == Kind::Git { LowerError::GitChecksum } else { LowerError::Checksum };
                    return Err(Error::at(at, e(sum.clone())).into());
                }
            }
            match groups.iter_mut().find(|(k, _)| *k == kind && kind != Kind::Git) {
                Some((_, group)) => group.push(source),
                None => groups.push((kind, vec![source])),
            }
        }
        groups.sort_by_key(|(k, _)| *k);
        if !inline.is_empty() {
            groups.push((Kind::Inline, inline.iter().map(|f| f.name.clone()).collect()));
        }

        let name = st.name(&redact::credentials(&cmd.text));
        for (kind, sources) in groups {
            let mut inputs = vec![st.vertex.clone()];
            let from = match (kind, &source_input) {
                (Kind::Local, Some((from, _))) => from.clone(),
                (Kind::Local, None) => CopyFrom::Context,
                (Kind::Url, _) => CopyFrom::Url,
                (Kind::Git, _) => CopyFrom::Git { keep_git_dir: copy.keep_git_dir },
                (Kind::Inline, _) => CopyFrom::Inline(std::mem::take(&mut inline)),
            };
            if let (CopyFrom::Input, Some((_, Some(input)))) = (&from, &source_input) {
                inputs.push(input.clone());
            }
            // BuildKit's wording: no --from, heredocs as `<<NAME`.
            let mut shown = keyword.to_owned();
            if copy.parents {
                shown += " --parents";
            }
            for (flag, value) in [("chown", &chown), ("chmod", &chmod)] {
                if let Some(v) = value {
                    shown += &format!(" --{flag}={v}");
                }
            }
            for source in &sources {
                shown += if kind == Kind::Inline { " <<" } else { " " };
                shown += source;
            }
            shown += &format!(" {dest}");
            let shown = redact::credentials(&shown);
            let op = Op::Copy(CopyOp {
                unpack: copy.add && copy.unpack.unwrap_or(kind == Kind::Local),
                checksum: if kind == Kind::Local { None } else { checksum.clone() },
                from,
                sources,
                dest: abs.clone(),
                chown: chown.clone(),
                chmod: chmod.clone(),
                link: copy.link,
                parents: copy.parents,
                exclude: exclude.clone(),
            });
            st.vertex = self.add(op, inputs, name.clone(), cmd.location)?;
            st.history_of_op(shown);
        }
        Ok(())
    }

    /// What `COPY --from=<from>` reads: a named context (looked up first, as
    /// BuildKit does), an earlier stage (by name or index) or an image; and
    /// the vertex it reads, unless it is a directory.
    fn copy_source(&mut self, index: usize, from: &str, at: Location) -> Result<(CopyFrom, Option<Digest>), Halt> {
        let input = match self.named_context(from) {
            Some((key, NamedContext::Directory)) => return Ok((CopyFrom::NamedContext(key), None)),
            Some((_, NamedContext::Image(reference))) => self.image_source(&reference, at, Reader::Copy)?,
            None => self.stage_source(index, from, at, Reader::Copy)?,
        };
        Ok((CopyFrom::Input, Some(input)))
    }

    /// The vertex of an earlier stage (by name or index, as `--from` names
    /// it) or, when no stage has that name, of an image.
    pub(super) fn stage_source(
        &mut self,
        index: usize,
        from: &str,
        at: Location,
        reader: Reader,
    ) -> Result<Digest, Halt> {
        let stages = self.file.stages.len();
        // A number is an index, as Go's Atoi reads it (`+1`, `01`), never an image.
        let found = match from.parse::<i64>() {
            Ok(n) => Some(
                usize::try_from(n)
                    .ok()
                    .filter(|&i| i < stages)
                    .ok_or_else(|| Error::at(at, reader.error(From::Index(stages), from)))?,
            ),
            Err(_) => self.find_stage(from),
        };
        match found {
            Some(i) if i == index => Err(Error::at(at, reader.error(From::Itself, from)).into()),
            Some(i) if i > index => Err(Error::at(at, reader.error(From::Later, from)).into()),
            Some(i) => Ok(self.stage(i)?.vertex.clone()),
            None => Ok(self.image_source(from, at, reader)?),
        }
    }

    pub(super) fn image_source(&mut self, from: &str, at: Location, reader: Reader) -> Result<Digest, Error> {
        let image = self.resolve(from, at)?.ok_or_else(|| Error::at(at, reader.error(From::NotFound, from)))?;
        let name = format!("image {}", image.name);
        let op = Op::Image { name: image.name, digest: image.digest };
        self.add(op, vec![], name, at)
    }
}

/// What reads another stage or an image: COPY's `--from` or a RUN mount's
/// `from=`; each names itself in its errors.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reader {
    Copy,
    Mount,
}

/// Why a `--from` names nothing that can be read.
enum From {
    NotFound,
    Itself,
    Later,
    /// A stage index past the stages (their count).
    Index(usize),
}

impl Reader {
    fn error(self, why: From, name: &str) -> LowerError {
        let name = name.to_owned();
        match (self, why) {
            (Reader::Copy, From::NotFound) => LowerError::CopyFromNotFound(name),
            (Reader::Copy, From::Itself) => LowerError::CopyFromItself(name),
            (Reader::Copy, From::Later) => LowerError::CopyFromLater(name),
            (Reader::Copy, From::Index(n)) => LowerError::StageIndex(name, n),
            (Reader::Mount, From::NotFound) => LowerError::MountFromNotFound(name),
            (Reader::Mount, From::Itself) => LowerError::MountFromItself(name),
            (Reader::Mount, From::Later) => LowerError::MountFromLater(name),
            (Reader::Mount, From::Index(n)) => LowerError::MountStageIndex(name, n),
        }
    }
}
